"""Simple baselines for the transfer suite: what a model has to beat.

- `NaiveBayes`: multinomial naive Bayes over lower-cased word unigrams and
  bigrams (and, optionally, character n-grams), its smoothing chosen on the
  validation split. A strong baseline on short texts and language
  identification.
- `ByteNgramLM`: an interpolated byte n-gram language model (Witten-Bell
  smoothing, as in Chen & Goodman 1998), its order chosen on validation;
  scored in bits per byte, so it compares with subword models whatever
  their tokenizer.
- `copy_source`: translation by copying the source sentence (names,
  numbers and cognates overlap; a model worse than this has learned
  nothing).

No dependency beyond NumPy; deterministic.
"""

import collections
import math
import re

import numpy as np

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def word_features(text, char_ngrams=0):
    """Lower-cased word unigrams and bigrams (and char n-grams up to N)."""
    words = _WORD.findall(text.lower())
    features = list(words)
    features += [f"{a} {b}" for a, b in zip(words, words[1:])]
    if char_ngrams:
        padded = f" {text.lower()} "
        for n in range(2, char_ngrams + 1):
            features += [
                "#" + padded[i : i + n] for i in range(len(padded) - n + 1)
            ]
    return features


class NaiveBayes:
    """Multinomial naive Bayes with additive smoothing `alpha`."""

    def __init__(self, alpha=0.1, char_ngrams=0):
        self.alpha = alpha
        self.char_ngrams = char_ngrams

    def fit(self, texts, labels):
        self.classes = sorted(set(labels))
        index = {c: i for i, c in enumerate(self.classes)}
        counts = collections.defaultdict(lambda: np.zeros(len(self.classes)))
        priors = np.zeros(len(self.classes))
        for text, label in zip(texts, labels):
            i = index[label]
            priors[i] += 1
            for feature in word_features(text, self.char_ngrams):
                counts[feature][i] += 1
        self.vocabulary = {f: j for j, f in enumerate(counts)}
        table = np.stack(list(counts.values())) if counts else np.zeros((0, 1))
        self.log_prior = np.log(priors / priors.sum())
        smoothed = table + self.alpha
        self.log_likelihood = np.log(smoothed / smoothed.sum(axis=0))
        return self

    def predict(self, texts):
        result = []
        for text in texts:
            rows = [
                self.vocabulary[f]
                for f in word_features(text, self.char_ngrams)
                if f in self.vocabulary
            ]
            scores = self.log_prior + self.log_likelihood[rows].sum(axis=0)
            result.append(self.classes[int(np.argmax(scores))])
        return result


def classification_scores(predictions, labels):
    """Accuracy, macro-F1 (over the classes of `labels`) and per-class F1."""
    classes = sorted(set(labels))
    per_class = {}
    for c in classes:
        tp = sum(p == c and t == c for p, t in zip(predictions, labels))
        predicted = sum(p == c for p in predictions)
        actual = sum(t == c for t in labels)
        denominator = predicted + actual
        per_class[c] = 2 * tp / denominator if denominator else 0.0
    accuracy = sum(p == t for p, t in zip(predictions, labels)) / len(labels)
    return {
        "accuracy": accuracy,
        "macro_f1": sum(per_class.values()) / len(per_class),
        "per_class_f1": per_class,
    }


def best_naive_bayes(train, valid, alphas=(0.03, 0.1, 0.3, 1.0)):
    """Fits NB for each smoothing and char-n-gram setting; best on valid.

    Args:
        train, valid: `(texts, labels)` pairs.

    Returns:
        `(model, settings, valid_scores)`.
    """
    best = None
    for char_ngrams in (0, 4):
        for alpha in alphas:
            model = NaiveBayes(alpha, char_ngrams).fit(*train)
            scores = classification_scores(model.predict(valid[0]), valid[1])
            if best is None or scores["macro_f1"] > best[2]["macro_f1"]:
                settings = {"alpha": alpha, "char_ngrams": char_ngrams}
                best = (model, settings, scores)
    return best


class ByteNgramLM:
    """Interpolated Witten-Bell byte n-gram LM; documents end with byte 0."""

    def __init__(self, order=5):
        self.order = order

    @staticmethod
    def _stream(documents):
        return b"".join(d.encode("utf-8") + b"\x00" for d in documents)

    def fit(self, documents):
        data = self._stream(documents)
        # counts[n][context] = Counter of next bytes, for contexts of n bytes.
        self.counts = [collections.defaultdict(collections.Counter)]
        self.counts[0][b""].update(data)
        for n in range(1, self.order):
            table = collections.defaultdict(collections.Counter)
            for i in range(n, len(data)):
                table[data[i - n : i]][data[i]] += 1
            self.counts.append(table)
        return self

    def _probability(self, context, byte):
        p = 1.0 / 256
        for n in range(0, min(len(context), self.order - 1) + 1):
            table = self.counts[n].get(context[len(context) - n :])
            if table is None:
                break
            total = sum(table.values())
            distinct = len(table)
            weight = total / (total + distinct)
            p = weight * table.get(byte, 0) / total + (1 - weight) * p
        return p

    def bits_per_byte(self, documents):
        """Cross-entropy of the documents (end marks included) in bits/byte."""
        data = self._stream(documents)
        # Totals per context, cached: the same contexts repeat a lot.
        bits = 0.0
        for i in range(len(data)):
            context = data[max(0, i - self.order + 1) : i]
            bits -= math.log2(self._probability(context, data[i]))
        return bits / len(data)


def best_byte_ngram(train_documents, valid_documents, orders=(3, 4, 5, 6)):
    """Fits the largest order once and picks the best order on validation.

    Returns:
        `(model, order, valid_bits_per_byte)`.
    """
    model = ByteNgramLM(max(orders)).fit(train_documents)
    best = None
    for order in orders:
        model.order = order
        bpb = model.bits_per_byte(valid_documents)
        if best is None or bpb < best[1]:
            best = (order, bpb)
    model.order = best[0]
    return model, best[0], best[1]


def copy_source(sources):
    """The translation that copies each source sentence."""
    return list(sources)


def lm_bytes(documents):
    """The UTF-8 bytes of documents, one end mark each (the bpb divisor)."""
    return sum(len(d.encode("utf-8")) + 1 for d in documents)
