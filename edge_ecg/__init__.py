"""edge-ecg: ECG arrhythmia classification from training to small devices.

The package follows the data's one direction; each stage is one sub-package and imports only
the stages to its left (``tests/test_layers.py`` checks every import):

    records -> signal -> beats -> runtime -> stream -> evaluate -> model -> export -> cli
    (find,     (filter,   (windows, (LiteRT    (live ECG, (EC57      (train,   (convert, (commands)
     read)      detect)    RR, sets) wrapper)   sources)   scoring)   TF only)  TF only)

Everything left of ``model`` imports no TensorFlow, so a Raspberry Pi needs only the ``edge``
extra; ``evaluate`` scores any classifier (TFLite or Keras) and consumes what the stream emits.

Signal conventions (as in NeuroKit2): a signal is a 1-D float array in millivolts unless a
name says ``adc`` (raw ADC counts); positions are integer sample indices; rates ``fs`` are
in Hz; durations named ``*_s`` are in seconds.
"""

__version__ = "0.1.0"
