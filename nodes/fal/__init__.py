"""The pack's engine: plain Python that never imports ComfyUI (the CLI and the tests use it directly).

Layers, lowest first; a layer imports only the ones before it (tests/test_layers.py checks):
base → wire → models → media → queue → platform → state → edit → panel → cli.
"""
