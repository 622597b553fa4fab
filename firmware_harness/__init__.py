"""The device side of edge-ecg, tested on a host without hardware.

- ``c/``: the portable C99 firmware core (sample ring buffer, CRC-16, frame encoder), built
  here with the machine's C compiler (``make -C firmware_harness/c``) into a shared library
  for Python and a C unit-test runner.
- ``board/``: the port for an Arduino Uno/Nano (ATmega328P) with an AD8232 front end.
- :mod:`firmware_harness.ccore`: builds and loads the C core with ctypes.
- :mod:`firmware_harness.emulator`: an emulated board on a pseudo-terminal
  (``edge-ecg emulate``), replaying a record through the compiled C encoder.
- ``PROTOCOL.md`` and ``vectors/``: the wire format and the byte vectors that the C encoder
  and :mod:`edge_ecg.stream.protocol` are both tested against.
"""
