"""Live ECG: reading a board or a simulator, detecting and classifying beats as they come.

The device-side end of the flow (no TensorFlow, ever). :mod:`edge_ecg.stream.protocol`
holds the binary serial protocol shared with the C encoder in ``firmware_harness/``.
Sub-modules are imported by the code that needs them, so importing this package is cheap:

- ``sources``: the :class:`Chunk` contract and one module per source (serial with reconnect,
  ASCII, binary, BLE strap, replay, simulator) and the bounded :class:`ThreadedReader`;
- ``simulate``: the synthetic ECG with N, S and V beats and ground truth;
- ``pipeline``: resample -> clean -> detect -> window -> classify, with gaps and quality gating;
- ``runner``: the loop (limits, Ctrl-C, summary); ``view``: the live terminal view;
- ``events``: :class:`BeatEvent` and the JSONL writer; ``save``: ``--save`` as WFDB;
- ``latency``: stage timers and percentiles; ``classifier_files``: finding and loading the shipped
  ``.tflite`` (default model), ``profile``.
"""
