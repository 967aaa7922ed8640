"""What handles show in a cell and the panel draws, without widgets: escaped HTML fragments and
text (``text``, ``fragments``), previews of outputs by media type (``previews``), ``inv.show()`` /
``batch.show()`` (``shown``) and the activity charts as SVG (``charts``, ``activity``)."""
