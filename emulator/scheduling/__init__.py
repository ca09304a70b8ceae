"""Pure scheduling decisions: what a service's next step is, given what its tasks are doing."""
