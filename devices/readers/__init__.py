"""Card readers: each backend reads identities on its own thread and reports plain events.

The application gives a reader a sink; the sink is called from the reader's thread, never the GUI's.
"""
