"""Control loops: observe -> decide -> act, through the state store and a runtime."""
