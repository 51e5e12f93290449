"""Card profiles: what to say to a card once a reader holds it, over any APDU transport.

A registry picks the profile by ATR and application; the ICAO 9303 eMRTD profile is the first.
"""
