"""Model functions returning functional `keras.Model`s (backend-agnostic).

Modules: `translation` (encoder-decoder), `bert` (encoder, masked LM,
classifier), `gpt` (decoder-only LM); presets in `presets`.
"""
