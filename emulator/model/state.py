"""The one state store: every object of the emulator and the journal of what changed, in SQLite.

Loops read it and write to it; nothing keeps a private copy of the truth, so
a restart (or a crash) loses nothing that was committed. Objects are the model
dataclasses, held in memory per kind (insertion order kept) and written
through to SQLite when a transaction commits, as one SQLite transaction.

Conventions for writers:
- Write only inside `with store.transaction() as tx:`; `put` every object you
  mutated, even one you got from `get` (the store holds that same object).
  Mutate objects only inside a transaction, and never `await` inside one.
- If the block raises, SQLite is untouched and every key the transaction
  touched is restored (as a fresh object) from its last committed copy:
  read objects again after a failed transaction.
- A `put` whose serialized body equals the committed one writes nothing and
  is not reported as a change.
- One thread: the SQLite connection belongs to the thread that opened the store.

For loops that read a kind every few seconds at scale (10,000 tasks), the store
keeps indexes (`store.index(kind, name, key_of)`: a task group's tasks, an
instance's tasks) and a version per kind (`store.version(kind)`), both brought
up to date by every commit and every rolled-back transaction, never by the
loops themselves: a reader finds what it needs without scanning everything,
and a cache of what a kind holds is still right while its version is the same.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator

from .cluster import Cluster
from .container_instance import ContainerInstance
from .events import Event
from .service import Service
from .shapes import aws_name, from_api, to_api
from .task import Task
from .task_definition import TaskDefinition

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FORMAT = "ecs-emulator-state"
DEFAULT_MAX_EVENTS = 100_000

_SCHEMA = """
CREATE TABLE objects (kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE events (seq INTEGER PRIMARY KEY, kind TEXT, resource TEXT, aws_time REAL, wall_time REAL,
                     message TEXT, detail TEXT);
CREATE INDEX events_resource ON events (resource);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('format', '%s'), ('schema_version', '%d');
""" % (FORMAT, SCHEMA_VERSION)


class StateFileError(Exception):
    """The state file exists but is not one this emulator can read; it is left untouched."""


@dataclass(frozen=True)
class Codec:
    cls: type
    dump: Callable[[Any], dict[str, Any]]
    load: Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Change:
    kind: str
    key: str
    op: str           # "put" | "delete"
    obj: Any = None   # the stored object for "put", None for "delete"


@dataclass(frozen=True)
class CommitNotice:
    changes: list[Change] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


_CODECS: dict[str, Codec] = {}


def _dump_lossless(obj: Any) -> dict[str, Any]:
    """`to_api`, plus the None fields it omits, so a default of "EC2" cannot replace a None."""
    return _keep_nones(obj, to_api(obj))


_SCALARS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[tuple[str, str], ...] | None] = {}


def _field_names(cls: type) -> tuple[tuple[str, str], ...] | None:
    """(attribute, AWS name) of a dataclass's fields but `extra`; None for a class that is not one."""
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        names = (tuple((f.name, aws_name(f)) for f in dataclasses.fields(cls) if f.name != "extra")
                 if dataclasses.is_dataclass(cls) else None)
        _FIELD_NAMES[cls] = names
        return names


def _keep_nones(obj: Any, data: Any) -> Any:
    cls = type(obj)
    if cls in _SCALARS:
        return data
    names = _field_names(cls)
    if names is not None:
        if isinstance(data, dict):
            for attr, name in names:
                value = getattr(obj, attr)
                if value is None:
                    data[name] = None
                elif type(value) not in _SCALARS and name in data:
                    _keep_nones(value, data[name])
    elif isinstance(obj, (list, tuple)) and isinstance(data, list):
        for item, item_data in zip(obj, data):
            if type(item) not in _SCALARS:
                _keep_nones(item, item_data)
    elif isinstance(obj, dict) and isinstance(data, dict):
        for k, v in obj.items():
            if k in data and type(v) not in _SCALARS:
                _keep_nones(v, data[k])
    return data


def register_kind(kind: str, cls: type, dump: Callable | None = None, load: Callable | None = None) -> None:
    """Teach every store a kind. Defaults: the class's own `to_api`/`from_api` if it has both,
    else `shapes.to_api`/`from_api` (None fields kept)."""
    if dump is None and load is None and hasattr(cls, "to_api") and hasattr(cls, "from_api"):
        dump, load = cls.to_api, cls.from_api
    codec = Codec(cls, dump or _dump_lossless, load or (lambda data: from_api(cls, data)))
    known = _CODECS.get(kind)
    if known and (known.cls.__module__, known.cls.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"kind {kind!r} is already registered for {known.cls.__qualname__}")
    _CODECS[kind] = codec


def codec_for(kind: str) -> Codec:
    try:
        return _CODECS[kind]
    except KeyError:
        raise KeyError(f"unknown state kind {kind!r}: registered kinds are {sorted(_CODECS)}; "
                       "call emulator.model.state.register_kind first") from None


register_kind("cluster", Cluster)
register_kind("container_instance", ContainerInstance)
register_kind("task_definition", TaskDefinition)
register_kind("task", Task)
register_kind("service", Service)


class Transaction:
    """The writes of one `with store.transaction()` block; usable only while it is open."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self.touched: dict[tuple[str, str], None] = {}   # ordered set of (kind, key)
        self.events: list[Event] = []
        self.first_seq = store.last_seq + 1
        self.open = True

    def put(self, kind: str, key: str, obj: Any) -> None:
        self._check_open()
        cls = codec_for(kind).cls
        if not isinstance(obj, cls):
            raise TypeError(f"kind {kind!r} holds {cls.__name__}, not {type(obj).__name__}")
        self._touch(kind, key)[key] = obj

    def delete(self, kind: str, key: str) -> None:
        self._touch(kind, key).pop(key, None)

    def record(self, event: Event) -> Event:
        self._check_open()
        clock = self._store.clock
        event.seq = self.first_seq + len(self.events)
        event.aws_time = event.aws_time or clock.now()
        event.wall_time = event.wall_time or clock.wall()
        self.events.append(event)
        return event

    def _touch(self, kind: str, key: str) -> dict[str, Any]:
        self._check_open()
        table = self._store._table(kind)
        self.touched[(kind, key)] = None
        return table

    def _check_open(self) -> None:
        if not self.open:
            raise RuntimeError("this transaction has ended; open a new one with store.transaction()")


class Index:
    """Keys of one kind grouped by a value of their objects (a task's group, its instance, ...).

    Kept in step by the store at every commit (and after a failed transaction), never by
    a loop's own bookkeeping, so it says what the committed state says. A bucket lists
    its keys in the kind's own order (that of `store.list`). Readers check the fields they
    care about on the objects they get when those can change: an index narrows down where
    to look.
    """

    def __init__(self, store: StateStore, kind: str, key_of: Callable[[Any], Any]) -> None:
        self.kind, self.key_of = kind, key_of
        self._table = store._table(kind)
        self._buckets: dict[Any, dict[str, None]] = {}
        self._where: dict[str, Any] = {}          # key -> its bucket's value
        self._ordinal: dict[str, int] = {}        # key -> its place in the kind's order
        self._unordered: set[Any] = set()         # buckets that got a key out of order
        self._next = 0
        for key, obj in self._table.items():
            self._put(key, obj)

    def keys(self, value: Any) -> list[str]:
        """The keys whose committed object has `value`, in the kind's order."""
        bucket = self._buckets.get(value)
        if not bucket:
            return []
        if self._unordered and value in self._unordered:
            ordinal = self._ordinal
            ordered = sorted(bucket, key=ordinal.__getitem__)
            bucket.clear()
            bucket.update(dict.fromkeys(ordered))
            self._unordered.discard(value)
        return list(bucket)

    def objects(self, value: Any) -> list[Any]:
        """The objects whose committed state has `value`, in the kind's order."""
        keys = self.keys(value)
        try:
            return list(map(self._table.__getitem__, keys))
        except KeyError:  # deleted by the transaction now open
            table = self._table
            return [obj for obj in map(table.get, keys) if obj is not None]

    def count(self, value: Any) -> int:
        """How many keys have `value` (without listing them)."""
        return len(self._buckets.get(value, ()))

    def _put(self, key: str, obj: Any) -> None:
        value = self.key_of(obj)
        if key not in self._ordinal:
            self._ordinal[key] = self._next
            self._next += 1
        old = self._where.get(key, _ABSENT)
        if old is not _ABSENT:
            if old == value:
                return
            self._drop(key, old)
        bucket = self._buckets.setdefault(value, {})
        if bucket and self._ordinal[next(reversed(bucket))] > self._ordinal[key]:
            self._unordered.add(value)
        bucket[key] = None
        self._where[key] = value

    def _delete(self, key: str) -> None:
        old = self._where.pop(key, _ABSENT)
        if old is not _ABSENT:
            self._drop(key, old)
        self._ordinal.pop(key, None)

    def _drop(self, key: str, value: Any) -> None:
        bucket = self._buckets.get(value)
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self._buckets[value]
                self._unordered.discard(value)


_ABSENT = object()


class StateStore:
    """Every object and the event journal; see the module docstring for the writing rules."""

    def __init__(self, path: str | None = None, clock: Any = None,
                 max_events: int = DEFAULT_MAX_EVENTS) -> None:
        if max_events < 0:
            raise ValueError("max_events must be >= 0")
        self.path = None if path in (None, ":memory:") else str(path)
        self.clock = clock or SimpleNamespace(now=time.time, wall=time.time)
        self.max_events = max_events
        self._objects: dict[str, dict[str, Any]] = {}   # decoded objects, per kind
        self._bodies: dict[str, dict[str, str]] = {}    # last committed JSON, per kind
        self._listeners: list[Callable[[CommitNotice], None]] = []
        self._tx: Transaction | None = None
        self._indexes: dict[str, dict[str, Index]] = {}   # kind -> index name -> index
        self._versions: dict[str, int] = {}               # kind -> commits (and rollbacks) that changed it
        self._db = _open_database(self.path)
        self.last_seq = self._load()

    def get(self, kind: str, key: str) -> Any | None:
        return self._table(kind).get(key)

    def list(self, kind: str) -> list[Any]:
        return list(self._table(kind).values())

    def keys(self, kind: str) -> list[str]:
        return list(self._table(kind))

    def count(self, kind: str) -> int:
        return len(self._table(kind))

    def index(self, kind: str, name: str, key_of: Callable[[Any], Any]) -> Index:
        """The store's index `name` of a kind: made on the first call from the objects the store holds,
        then kept at every commit. `key_of(obj)` must depend only on fields the object is committed with
        (a change of them is a change of its body, so the commit reports it)."""
        indexes = self._indexes.setdefault(kind, {})
        found = indexes.get(name)
        if found is None:
            # Made inside a transaction, it starts from what that transaction wrote too: the commit
            # confirms it, a rollback puts the touched keys back (see _restore).
            found = indexes[name] = Index(self, kind, key_of)
        return found

    def version(self, kind: str) -> int:
        """A number that changes whenever a commit (or a rolled-back transaction) changes objects of `kind`:
        caches of what a kind holds compare it to know they are still right."""
        return self._versions.get(kind, 0)

    def events(self, since_seq: int = 0, kinds: str | Iterable[str] | None = None,
               resource: str | None = None, limit: int | None = None) -> list[Event]:
        """Committed journal entries with seq > since_seq, oldest first."""
        sql = "SELECT seq, kind, resource, aws_time, wall_time, message, detail FROM events WHERE seq > ?"
        args: list[Any] = [since_seq]
        if kinds is not None:
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += kinds
        if resource is not None:
            sql, args = sql + " AND resource = ?", args + [resource]
        sql += " ORDER BY seq" + (" LIMIT ?" if limit is not None else "")
        args += [limit] if limit is not None else []
        return [Event(kind=k, resource=r, message=m, aws_time=a, wall_time=w, detail=json.loads(d), seq=s)
                for s, k, r, a, w, m, d in self._db.execute(sql, args)]

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One all-or-nothing unit of writes, committed when the outermost block exits.

        A nested call joins the outer transaction: an exception the outer block
        catches does not undo the inner block's writes; one that escapes undoes all.
        """
        if self._tx is not None:
            yield self._tx
            return
        tx = self._tx = Transaction(self)
        try:
            yield tx
            notice = self._commit(tx)
        except BaseException:
            self._restore(tx)
            raise
        finally:
            tx.open, self._tx = False, None
        self._notify(notice)

    def put(self, kind: str, key: str, obj: Any) -> None:
        self._current_tx().put(kind, key, obj)

    def delete(self, kind: str, key: str) -> None:
        self._current_tx().delete(kind, key)

    def record(self, event: Event) -> Event:
        return self._current_tx().record(event)

    def subscribe(self, listener: Callable[[CommitNotice], None]) -> Callable[[], None]:
        """Call `listener(CommitNotice)` after every commit that changed something."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def close(self) -> None:
        self._db.close()

    def _current_tx(self) -> Transaction:
        if self._tx is None:
            raise RuntimeError("state writes need a transaction: `with store.transaction() as tx: tx.put(...)`")
        return self._tx

    def _table(self, kind: str) -> dict[str, Any]:
        codec = codec_for(kind)
        if kind not in self._objects:  # decoded on first use, so kinds may register after open
            self._objects[kind] = {key: self._decode(codec, kind, key, body)
                                   for key, body in self._bodies.setdefault(kind, {}).items()}
        return self._objects[kind]

    def _decode(self, codec: Codec, kind: str, key: str, body: str) -> Any:
        try:
            return codec.load(json.loads(body))
        except Exception as exc:
            raise StateFileError(f"{self.path or ':memory:'}: cannot read {kind} {key!r}: {exc}") from exc

    def _load(self) -> int:
        for kind, key, body in self._db.execute("SELECT kind, key, body FROM objects ORDER BY rowid"):
            self._bodies.setdefault(kind, {})[key] = body
        for kind in self._bodies:
            if kind in _CODECS:
                self._table(kind)
        (max_seq,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        return max(max_seq, int(row[0]) if row else 0)

    def _pending_rows(self, tx: Transaction) -> tuple[list[tuple[str, str, str | None]], list[Change]]:
        rows, changes = [], []
        for kind, key in tx.touched:
            obj, committed = self._objects[kind].get(key), self._bodies[kind].get(key)
            body = None if obj is None else json.dumps(codec_for(kind).dump(obj), separators=(",", ":"))
            if body != committed:
                rows.append((kind, key, body))
                changes.append(Change(kind, key, "delete" if body is None else "put", obj))
        return rows, changes

    def _commit(self, tx: Transaction) -> CommitNotice:
        rows, changes = self._pending_rows(tx)
        if not rows and not tx.events:
            return CommitNotice()
        last_seq = tx.first_seq + len(tx.events) - 1 if tx.events else self.last_seq
        self._write(rows, tx.events, last_seq)
        for kind, key, body in rows:
            if body is None:
                self._bodies[kind].pop(key, None)
            else:
                self._bodies[kind][key] = body
        self.last_seq = last_seq
        self._update_indexes(changes)
        return CommitNotice(changes, list(tx.events))

    def _update_indexes(self, changes: list[Change]) -> None:
        versions, indexes = self._versions, self._indexes
        for change in changes:
            kind = change.kind
            versions[kind] = versions.get(kind, 0) + 1
            for index in indexes.get(kind, {}).values():
                if change.op == "delete":
                    index._delete(change.key)
                else:
                    index._put(change.key, change.obj)

    def _write(self, rows: list[tuple[str, str, str | None]], events: list[Event], last_seq: int) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM objects WHERE kind = ? AND key = ?",
                           [(k, key) for k, key, body in rows if body is None])
            db.executemany("INSERT INTO objects (kind, key, body) VALUES (?, ?, ?) "
                           "ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body",
                           [row for row in rows if row[2] is not None])
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(e.seq, e.kind, e.resource, e.aws_time, e.wall_time, e.message,
                             json.dumps(e.detail)) for e in events])
            if events:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)", (str(last_seq),))
                db.execute("DELETE FROM events WHERE seq <= ?", (last_seq - self.max_events,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _restore(self, tx: Transaction) -> None:
        """Put every touched key back as it was committed, in committed order."""
        touched: dict[str, set[str]] = {}
        for kind, key in tx.touched:
            touched.setdefault(kind, set()).add(key)
        for kind, keys in touched.items():
            codec, table = codec_for(kind), self._objects[kind]
            restored = {key: self._decode(codec, kind, key, body) if key in keys else table[key]
                        for key, body in self._bodies[kind].items()}
            table.clear()
            table.update(restored)
            self._versions[kind] = self._versions.get(kind, 0) + 1
            for index in self._indexes.get(kind, {}).values():
                for key in keys:
                    if key in restored:
                        index._put(key, restored[key])
                    else:
                        index._delete(key)

    def _notify(self, notice: CommitNotice) -> None:
        if not notice.changes and not notice.events:
            return
        for listener in list(self._listeners):
            try:
                listener(notice)
            except Exception:
                log.exception("state listener %r failed; the commit stands", listener)


def _open_database(path: str | None) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path or ":memory:", isolation_level=None)
    except sqlite3.Error as exc:
        raise StateFileError(f"{path}: cannot open the state file ({exc})") from exc
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
        else:
            _check_ours(db, tables, path)
        if path:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        return db
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StateFileError(f"{path}: not an ecs-emulator state file ({exc}); "
                             "left untouched: move it away or choose another state path") from exc
    except StateFileError:
        db.close()
        raise


def _check_ours(db: sqlite3.Connection, tables: set[str], path: str | None) -> None:
    meta = dict(db.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
    if meta.get("format") != FORMAT or not {"objects", "events"} <= tables:
        raise StateFileError(f"{path}: an SQLite database, but not an ecs-emulator state file; "
                             "left untouched: move it away or choose another state path")
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        raise StateFileError(f"{path}: state schema version {meta.get('schema_version')} is not the "
                             f"supported version {SCHEMA_VERSION}; left untouched")
