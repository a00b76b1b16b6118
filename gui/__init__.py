"""The PyQt6 suggestion box: a text area with next-word suggestions as you type.

The GUI sees the prediction engine only through ``gui.engine.SuggestionEngine``;
it never imports torch or jieba. ``gui.app.main`` loads the model and opens
the window.
"""
