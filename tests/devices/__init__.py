"""Card readers against real peers: a pty speaking GA/T 467, a vendor library built here, pcscd."""
