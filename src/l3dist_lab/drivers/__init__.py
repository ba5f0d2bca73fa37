"""The lab's compute and network drivers, registered through entry points."""
