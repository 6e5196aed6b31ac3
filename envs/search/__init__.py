"""SearchQA: multi-hop question answering with a local search engine (BM25 or dense).

A fictional, seeded knowledge world (:mod:`world`, :mod:`names`) rendered as encyclopedia
passages, 1-4 hop questions over it (:mod:`questions`), a cached ``bm25s`` index and a dense hook
(:mod:`retriever`, :mod:`corpus`), Search-R1 action tags and SQuAD scoring (:mod:`answer`), the
env (:mod:`env`) and its expert (:mod:`expert`). Modules load on first use.
"""
