"""Wire: text and COBS/CRC binary codecs, serial sources, the virtual device and the recorder."""
