"""Everything Qt: screens, the elder-friendly theme, widgets, voice guide, and the bridges that
carry device and sync events onto the GUI thread."""
