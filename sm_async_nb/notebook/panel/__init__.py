"""The live ipywidgets panel: ``panel`` (the object that owns the widgets and wires events),
``table`` (reused row slots), ``widgets`` (everything around the table), ``rows`` (the data
and the strings a row shows) and ``actions`` (what the buttons do)."""
