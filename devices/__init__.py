"""Hardware behind small protocols: card readers and receipt printers.

Imports nothing of the application; failures are reported as plain values, never raised into the UI.
"""
