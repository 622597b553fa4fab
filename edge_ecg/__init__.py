"""edge-ecg: ECG arrhythmia classification from training to small devices.

The package follows the data's one direction of flow; each stage lives in one sub-package:

    records  -> signal  -> beats   -> model  -> export  -> runtime -> stream
    (MIT-BIH)  (filter,   (windows,  (train,   (convert, (LiteRT   (live ECG,
               detect)    RR, sets)  TF only)  TF only)  wrapper)  no TF)

``evaluate`` scores any of them the way AAMI EC57 does. Everything left of ``model`` and
right of ``export`` imports no TensorFlow, so a Raspberry Pi needs only the ``edge`` extra.

Signal conventions (as in NeuroKit2): a signal is a 1-D float array in millivolts unless a
name says ``adc`` (raw ADC counts); positions are integer sample indices; rates ``fs`` are
in Hz; durations named ``*_s`` are in seconds.
"""

__version__ = "0.1.0"
