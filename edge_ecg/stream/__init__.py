"""Live ECG: reading a board or a simulator, detecting and classifying beats as they come.

The device-side end of the flow (no TensorFlow, ever). :mod:`edge_ecg.stream.protocol`
holds the binary serial protocol shared with the C encoder in ``firmware_harness/``.
Sub-modules are imported by the code that needs them, so importing this package is cheap.
"""
