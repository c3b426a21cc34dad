"""Text around speech: which language a text is in, written text as it is spoken (text
normalisation, before synthesis), spoken words as they are written (inverse
normalisation, after recognition), and Chinese in the script its reader uses.

Both directions of normalisation run WeTextProcessing's compiled grammars through its
runtime ``wetext``; Chinese script conversion is OpenCC. Nothing here knows about
requests, engines or storage, so engines and services alike use it.
"""


def warm_up() -> None:
    """Load the grammars, the language model and OpenCC's tables now (about 2 s), not
    on the first request."""
    from webapp.app.text import language, normalise, script

    for code in ("zh", "en"):
        for operator in ("tn", "itn"):
            normalise.normaliser(code, operator)
    language.detect("Bonjour tout le monde, comment allez-vous")
    script.convert("預熱", script.SIMPLIFIED)
