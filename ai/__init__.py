"""The AI agent: answers customers from the tenant's knowledge base when it is confident, else hands over.

    knowledge.py        KnowledgeEntry, KnowledgeBase (versioned), the shared tokenizer
    provider.py         Provider protocol, Answer, decide(answer, threshold)
    scorer.py           OfflineScorer: BM25 ranking with a calibrated confidence, no network
    prompt.py           grounding prompt and defensive parsing of the model's JSON
    openai_provider.py  OpenAIProvider: any OpenAI-compatible chat-completions server
    agent.py            decide_request: AiRequest → AiDecision, failures become hand-offs
    exceptions.py       AIError, ModelError, ModelTimeout
    bench.py            ``python -m ai.bench``: the scorer's speed against a naive TF-IDF baseline

The Kafka worker (``ai.requests`` → ``ai.decisions``) calls ``decide_request`` with the tenant's
provider and knowledge base; see ARCHITECTURE.md, "Conversation state machine".
"""
