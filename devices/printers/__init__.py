"""Receipt printers behind the ReceiptPrinter protocol of devices.printing.

Each one lays out a ReceiptDocument for its medium and reports failures in a PrintResult."""
