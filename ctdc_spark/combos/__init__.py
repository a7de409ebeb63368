"""The combinations kernel several stages share: keys, enumeration, Spark counting, SDS file formats.

Aggregate counts the sensitive records with it, synthesize looks reported counts up in its tables,
evaluate counts the synthetic records and checks them with it. Import its modules directly:

* :mod:`.keys`: packed combination keys and sorted-key lookup tables (numpy);
* :mod:`.enumeration`: in-task enumeration and counting of combinations (numpy);
* :mod:`.counting`: the Spark wiring, ``mapInArrow`` tasks, one shuffle, key decoding, the
  risk analysis' per-length numbers;
* :mod:`.risk`: the protected records analysis and its TSV lines (plain Python);
* :mod:`.export`: the SDS-format aggregate files and their combination strings (Spark);
* :mod:`.sds_format`: how SDS writes numbers in its reports (plain Python).

This module imports none of them, so the numpy parts load without pyspark.
"""
