"""What a screen reader sees of the terminal: an AT-SPI client and the test that drives a whole
visit through it on a private accessibility bus."""
