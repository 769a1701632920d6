"""Similar written answers grouped, per question, so that a TA scores a group in one row of the review sheet.

Each answered text becomes a TF-IDF vector (scikit-learn: words and word pairs, English stop words dropped, accents
stripped, sublinear term frequency; fitted on that question's answers only, so words every student uses weigh
little), and answers are clustered by agglomerative clustering with complete linkage on the cosine distance: every
two answers of a group are at least `MIN_SIMILARITY` alike, so a chain of small edits never joins two different
answers. No language model, nothing from the network: the same answers give the same groups.

Groups are labelled `g1`, `g2`, ... per question, in the order of their first member's submission id; an answer
alike to no other has no group (an empty cell). Blank, missing or unreadable answers are never grouped.
"""
from __future__ import annotations

MIN_SIMILARITY = 0.7          # cosine similarity of the TF-IDF vectors of any two answers of one group
MIN_WORDS = 3                 # shorter answers are not grouped (too little text to call two alike)


def group_answers(texts: dict[str, str]) -> dict[str, str]:
    """{submission id: answer text} of one question -> {submission id: group label} for answers in a group of two
    or more (others are absent)."""
    ids = sorted((key for key, text in texts.items() if len(str(text).split()) >= MIN_WORDS), key=str.lower)
    if len(ids) < 2:
        return {}
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), stop_words="english", strip_accents="unicode",
                                 sublinear_tf=True, lowercase=True)
    try:
        vectors = vectorizer.fit_transform([texts[key] for key in ids]).toarray()
    except ValueError:              # nothing but stop words: no vocabulary
        return {}
    empty = ~vectors.any(axis=1)
    vectors[empty] = 1.0            # texts of stop words only: alike to each other, to nothing else much
    clusters = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="complete",
                                       distance_threshold=1.0 - MIN_SIMILARITY).fit_predict(vectors)
    members: dict[int, list[str]] = {}
    for key, cluster in zip(ids, clusters):
        members.setdefault(int(cluster), []).append(key)
    groups = [sorted(keys, key=str.lower) for keys in members.values() if len(keys) > 1]
    groups.sort(key=lambda keys: keys[0].lower())
    return {key: f"g{number}" for number, keys in enumerate(groups, start=1) for key in keys}
