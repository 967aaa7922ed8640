"""Results out: outputs into DataFrames (``loading``), Parquet datasets (``writer``, ``destinations``)
and files (``downloads``)."""
