"""The live ipywidgets panel: ``panel`` wires a state that computes (``state``, reading the journal
through ``query``) to a view that only draws (``view`` over ``table`` and ``widgets``), fed by one
loop (``loop``); ``intents`` and ``snapshot`` are the values between them; ``workers`` carries out
slow effects (``actions``: what the buttons do); ``rows``, ``details``, ``preview`` and ``strip``
format what is shown."""
