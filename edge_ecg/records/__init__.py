"""Records: where MIT-BIH lives, how to fetch and verify it, and how to read one record.

The first stage of the flow. Nothing here filters or windows a signal; it returns what
PhysioNet publishes, in physical units (mV), with beat annotations mapped to AAMI classes.
"""

from edge_ecg.records.aami import AAMI_MAP, CLASSES, DS1, DS2, PACED, aami_class
from edge_ecg.records.load import Record, load_record
from edge_ecg.records.locate import find_data_root, find_database, list_records

__all__ = [
    "AAMI_MAP",
    "CLASSES",
    "DS1",
    "DS2",
    "PACED",
    "Record",
    "aami_class",
    "find_data_root",
    "find_database",
    "list_records",
    "load_record",
]
