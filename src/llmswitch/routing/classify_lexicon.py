"""Marker vocabulary for the heuristic classifier, kept apart from the scoring logic.

Phrases are written naturally and normalised to word n-grams at import, so "don't" and
"trade-offs" match however the user punctuates them. Each dimension lists English first,
then Spanish, French, German and Portuguese. Chinese and Japanese have no spaces between
words, so their markers live in CJK and are matched as substrings instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# Asks for a proof or formal derivation: on their own these put a request in the reasoning tier.
PROOF: Final = (
    "prove", "proves", "proving", "proof", "disprove", "derive", "derivation", "theorem", "lemma",
    "induction", "inductive", "rigorous", "rigorously", "formally verify", "formal proof",
    "show that", "reason carefully", "think carefully",
    "demuestra", "demuestre", "demostrar", "demostración", "demostracion", "deduce",
    "démontrer", "démontrez", "démontre", "démonstration", "prouver", "prouvez",
    "beweise", "beweisen", "beweis", "herleiten", "herleitung", "leite",
    "prove que", "provar", "demonstre", "demonstrar", "demonstração",
)  # fmt: skip

# Softer signs that careful, multi-angle thinking is wanted.
REASONING: Final = (
    "step by step", "why does", "why do", "why is", "why must", "why would", "trade-off",
    "trade-offs", "tradeoff", "tradeoffs", "justify", "implications", "counterexample",
    "optimal", "correctness", "invariant", "walk through", "walk me through", "in depth",
    "root cause", "what would change your mind", "edge cases", "first principles",
    "carefully", "hypotheses", "hypothesis", "differential", "show your", "show the work",
    "show the calculation", "show your work",
    "paso a paso", "por qué", "compromisos", "justifica",
    "étape par étape", "pourquoi", "compromis", "justifie",
    "schritt für schritt", "warum", "begründe", "abwägungen",
    "passo a passo", "por que", "compensações", "justifique",
)  # fmt: skip

MULTI_STEP: Final = (
    "first", "then", "finally", "after that", "afterwards", "next", "step 1", "once done",
    "and then", "followed by", "if anything", "if it fails", "until",
    "primero", "luego", "después", "por último", "finalmente",
    "d'abord", "ensuite", "puis", "enfin",
    "zuerst", "dann", "danach", "schließlich", "anschließend",
    "primeiro", "depois", "em seguida", "por fim",
)  # fmt: skip

TECHNICAL: Final = (
    "algorithm", "architecture", "architect", "distributed", "latency", "throughput",
    "concurrency", "concurrent", "database", "schema", "index", "indexes", "shard", "sharding",
    "cache", "caching", "kubernetes", "microservice", "microservices", "consistency",
    "replication", "partition", "encryption", "authentication", "protocol", "compiler",
    "kernel", "thread", "mutex", "race", "deadlock", "scalability", "scale", "idempotency",
    "idempotent", "queue", "kafka", "rabbitmq", "postgres", "redis", "lock-free",
    "linearizable", "asymptotic", "complexity", "recurrence", "gradient", "regression",
    "transformer", "neural", "rate limiter", "load balancer", "failure modes", "failover",
    "throughput", "multi-tenant", "event sourcing", "crdt", "crdts", "consensus", "raft",
    "paxos", "memory leak", "heap", "profiling", "bottleneck", "vulnerabilities", "reentrancy",
    "downsampling", "retention", "time-series", "real-time", "sync", "synchronization",
    "design", "system", "systems", "data model", "storage", "network", "persistence",
    "transport", "timeouts", "retries", "election", "leader", "replica", "replicas", "cluster",
    "parser", "ast", "lexer", "interpreter", "memory", "allocation", "lock", "locking",
    "atomic", "transaction", "transactions", "isolation", "serializable", "oom", "p99", "slo",
    "observability", "alerting", "incident", "pipeline", "backpressure", "websocket", "grpc",
    "oauth", "tls", "certificate", "hashing", "overflow", "injection", "xss", "csrf",
    "vulnerability", "exploit", "orchestration", "terraform", "canary", "redundancy",
    "availability", "durability", "exactly-once", "at-least-once", "ordering", "offset",
    "replay", "migration", "normalization", "query planner", "seq scan", "orm", "rsa",
    "cryptography", "cryptographic", "quantum", "np-complete", "np-completeness", "embedding",
    "inference", "quantization", "fine-tune", "multi-region", "regions", "offline",
    "diseña", "diseño", "sistema", "conçois", "concevoir", "système", "entwirf", "entwurf",
    "projete", "projetar", "microserviços", "dienste", "ausfällen", "pagos", "paiement",
    "monolith", "hot path", "services", "rollback strategy", "data race",
    "graphql", "rest", "versioning", "schema evolution", "event-sourced", "projections",
    "snapshotting", "zero downtime", "swarm", "hash map", "hashmap", "linked list",
    "binary tree", "data structure", "big-o", "garbage collection", "mobile app",
    "arquitectura", "concurrencia", "base de datos", "escalabilidad", "latencia",
    "sincronización", "rendimiento",
    "latence", "cohérence", "base de données", "événementielle", "synchrone",
    "architektur", "datenbank", "verteilt", "nebenläufigkeit", "echtzeit", "schnittstellen",
    "arquitetura", "banco de dados", "concorrência", "escalabilidade", "migração",
)  # fmt: skip

CREATIVE: Final = (
    "poem", "poems", "poetry", "story", "stories", "haiku", "limerick", "sonnet", "lyrics",
    "song", "novel", "chapter", "fiction", "character", "characters", "plot", "tagline",
    "slogan", "toast", "cover letter", "name ideas", "brainstorm", "rewrite", "rephrase",
    "witty", "funny", "heartfelt", "outline", "screenplay", "verse", "rhyme", "narrator",
    "product description", "email to", "letter", "sms", "reply to", "copy", "movie", "film",
    "script for", "arc", "arcs", "act", "scene", "protagonist", "twist", "cliffhanger",
    "critique", "pacing", "dialogue", "passages", "catchy", "name for", "names for",
    "rewrite", "reword", "polish",
    "poema", "cuento", "historia", "canción", "letra", "relato", "carta",
    "poème", "histoire", "conte", "chanson", "lettre", "rédige", "relire", "réécris",
    "gedicht", "geschichte", "lied", "märchen", "brief", "umschreiben",
    "poesia", "história", "conto", "canção", "redija", "reescreva",
)  # fmt: skip

QUESTION_OPEN: Final = (
    "explain", "describe", "how does", "how is", "what should i", "look out for", "a good",
    "difference between", "differences between", "compare", "versus", "vs",
    "best way", "recommend", "estimate", "what's going on",
    "how would", "how should", "how could", "what would", "what are the implications",
    "what should", "why", "what happens", "what's happening",
    "what is happening", "what's wrong", "what is wrong", "what's going wrong", "which",
    "explica", "explícame", "explique", "erkläre", "explain", "por qué", "pourquoi", "warum",
)  # fmt: skip

QUESTION_FACT: Final = (
    "what is", "what's", "who is", "who wrote", "who was", "when did", "when is", "when was",
    "where is", "what year", "how many", "how much", "how tall", "how old", "how far",
    "what does", "capital of", "is it", "is a", "how do you say", "how do you spell",
    "what time", "what port", "what day",
    "cuál es", "qué es", "quién", "cuándo", "dónde",
    "quelle est", "qu'est-ce", "qui est", "quand", "où est",
    "was ist", "wer ist", "wann", "wo ist", "wie spät", "wie viel",
    "qual é", "o que é", "quem", "quando", "onde",
)  # fmt: skip

AGENTIC: Final = (
    "browse", "browser", "search the web", "go through", "inbox", "drafts folder", "execute",
    "run the", "deploy", "open an issue", "open a pr", "pull request", "commit", "push",
    "clone", "book", "reserve", "monitor", "watch the", "roll back", "rollback",
    "automatically", "every morning", "every day", "use the tool", "use tools", "use the browser",
    "plan and execute", "post an update", "post in", "email me", "send", "schedule",
    "check my", "look up", "find flights", "don't send", "create a new branch", "revert",
    "open a ticket", "file a ticket", "create a ticket", "notify", "add it to my calendar",
    "remind me", "turn off", "turn on", "channel", "our aws", "s3 bucket", "each owner",
    "ejecuta", "navega", "busca en internet", "planifica y ejecuta", "envía",
    "exécute", "exécuter", "navigue", "envoie", "planifie",
    "führe", "ausführen", "durchsuche", "sende", "plane und",
    "execute a", "planeje", "navegue", "envie", "pesquise",
)  # fmt: skip

CONSTRAINTS: Final = (
    "must", "must not", "at most", "at least", "no more than", "without", "exactly", "only",
    "ensure", "make sure", "don't", "do not", "within", "under", "keep", "preserve", "strict",
    "strictly", "avoid", "max", "maximum", "minimum", "never", "unchanged", "same",
    "debe", "sin", "como máximo", "al menos", "solo", "mantén",
    "doit", "sans", "au plus", "au moins", "seulement", "garde",
    "muss", "ohne", "höchstens", "mindestens", "nur", "behalte",
    "deve", "sem", "no máximo", "pelo menos", "apenas", "mantenha",
)  # fmt: skip

IMPERATIVE: Final = (
    "write", "implement", "build", "create", "design", "fix", "refactor", "explain", "list",
    "give", "summarize", "analyze", "analyse", "compare", "evaluate", "review", "propose",
    "migrate", "optimize", "debug", "convert", "add", "update", "generate", "draft", "plan",
    "calculate", "compute", "find", "solve", "estimate", "audit", "identify", "recommend",
    "organize", "include", "document", "test", "tests",
    "escribe", "diseña", "explica", "explícame", "analiza", "compara", "crea", "corrige",
    "écris", "conçois", "explique", "analyse", "compare", "crée", "corrige", "propose",
    "schreibe", "entwirf", "erkläre", "analysiere", "vergleiche", "erstelle", "korrigiere",
    "escreva", "projete", "explique", "analise", "compare", "crie", "corrija", "planeje",
)  # fmt: skip

OUTPUT_FORMAT: Final = (
    "json", "table", "yaml", "csv", "markdown", "xml", "bullet", "bullets", "bullet points",
    "diagram", "mermaid", "chart", "spreadsheet", "tabla", "tableau", "tabelle", "tabela",
)  # fmt: skip

GREETING: Final = (
    "hi", "hello", "hey", "hiya", "yo", "thanks", "thank", "you", "thx", "ty", "ok", "okay",
    "k", "yes", "no", "yep", "nope", "sure", "cool", "nice", "great", "awesome", "lol", "bye",
    "good", "morning", "night", "evening", "afternoon", "ping", "pong", "heartbeat",
    "heartbeat_ok", "check", "status", "got", "it", "there", "are", "so", "much", "that",
    "worked", "perfectly", "fixed", "talk", "tomorrow", "later", "see", "ya", "hope", "your",
    "day", "went", "well", "how", "doing", "today", "a", "the", "and", "oh", "ah", "haha",
    "hola", "qué", "tal", "gracias", "muy", "amable", "buenos", "días", "buenas", "noches",
    "bonjour", "salut", "merci", "beaucoup", "pour", "ton", "aide", "comment", "ça", "va",
    "bonsoir", "hallo", "danke", "schön", "guten", "tag", "morgen", "geht", "s", "das", "hat",
    "geholfen", "olá", "ola", "obrigado", "obrigada", "tudo", "bem", "bom", "dia", "boa",
    "noite", "claw", "there", "cheers", "appreciate",
)  # fmt: skip

SIMPLE_ASK: Final = (
    "define", "definition", "meaning of", "synonym", "antonym", "spell", "translate",
    "how do you say", "convert", "stand for", "capital of", "plural of", "shortcut",
    "what time", "time zone", "sort these", "fix the grammar", "one-liner", "one liner",
    "yes or no", "traduce", "traduis", "übersetze", "traduza", "just tell me",
    "one sentence", "two sentences", "in a word", "one word", "briefly", "short answer",
    "una frase", "dos frases", "une phrase", "deux phrases", "einem satz", "zwei sätzen",
    "uma frase", "duas frases", "一句话", "一言で",
    "three sentences", "a few sentences", "one paragraph", "tres frases", "trois phrases",
    "drei sätzen", "três frases",
)  # fmt: skip

# A short reply that hands the work back to the earlier turns rather than ending it.
GO_AHEAD: Final = (
    "go ahead", "proceed", "continue", "do it", "yes please", "start", "carry on", "let's do it",
    "adelante", "continúa", "vas-y", "continue", "mach weiter", "los geht's", "pode seguir",
    "prossiga",
)  # fmt: skip

# Words in a short opening paragraph that say the next paragraphs are material, not the ask.
MATERIAL_REF: Final = (
    "this", "these", "following", "below", "above", "attached", "here", "siguiente", "este",
    "esta", "estos", "cet", "cette", "ce", "suivant", "dessous", "folgende", "folgenden",
    "diese", "dieses", "abaixo", "esse", "essa",
)  # fmt: skip

REFERENCES: Final = (
    "the above", "above", "this file", "this code", "this function", "the following", "below",
    "attached", "as mentioned", "you mentioned", "earlier", "previous", "left off", "this log",
    "these events", "this thread", "this article", "this text", "this query", "this contract",
    "this chart", "this picture", "this photo", "this image", "this screenshot", "here's",
    "here is", "ci-dessous", "siguiente", "folgende", "abaixo", "este texto", "cet article",
)  # fmt: skip

DOMAIN: Final = (
    "legal", "contract", "clause", "lease", "indemnify", "liability", "tenant", "landlord",
    "gdpr", "hipaa", "medical", "clinical", "diagnosis", "differential", "symptoms", "dosage",
    "prescribed", "bnp", "troponin", "creatinine", "finance", "financial", "tax", "securities",
    "valuation", "hedging", "portfolio", "compliance", "regulatory", "actuarial", "unit economics",
    "cac", "ltv", "churn", "treasury", "multisig", "custodian", "black-scholes",
    "contrato", "cláusula", "médico", "diagnóstico", "fiscal", "contrat", "juridique",
    "vertrag", "klausel", "medizinisch", "steuer", "jurídico",
)  # fmt: skip

NEGATION: Final = (
    "not", "no", "never", "don't", "doesn't", "isn't", "won't", "can't", "without", "except",
    "neither", "nor", "none", "no", "ni", "nunca", "pas", "jamais", "nicht", "kein", "keine",
    "nie", "não", "nem",
)  # fmt: skip

# Mathematics beyond arithmetic; these make a request harder.
MATH: Final = (
    "integral", "integrate", "derivative", "differentiate", "equation", "equations",
    "probability", "eigenvalue", "eigenvalues", "eigenvectors", "matrix", "prime", "primes",
    "polynomial", "series", "converge", "converges", "diverge", "diverges", "limit",
    "expected number", "expected value", "variance", "recurrence", "logarithm", "irrational",
    "rational", "integer", "integers", "real solutions", "function f", "group of", "abelian",
    "field", "sqrt", "compounded", "formula", "quadratic", "geometry", "sum of", "bayes", "pde",
    "weighings", "arrangements", "syllogism", "3-sat", "annual return", "exponential",
    "converse", "doubles", "rule of 72",
    "determinant", "inverse", "vector", "vectors", "dot product", "cross product", "rank",
    "binomial", "distribution", "standard deviation", "median",
    "ecuación", "probabilidad", "serie", "números", "équation", "probabilité", "suite",
    "bornée", "convergente", "gleichung", "wahrscheinlichkeit", "primzahlen", "reihe",
    "spannbaum", "equação", "probabilidade", "irracional", "raiz quadrada",
)  # fmt: skip

# Arithmetic and unit work: still a math task, but no harder for it.
ARITHMETIC: Final = (
    "calculate", "compute", "solve", "solve for", "percent", "fahrenheit", "celsius", "ounces",
    "pound", "pounds", "kg", "miles", "km", "x", "n", "triangle", "angles", "days until",
    "inch", "inches", "cm", "centimeters", "meters", "feet", "foot", "liters", "gallons",
    "grams", "power of", "squared", "divided by", "times", "minus", "are left",
    "how many", "how much", "triángulo", "ángulos", "calcula", "calcule", "berechne",
)  # fmt: skip

CODE_WORDS: Final = (
    "code", "function", "script", "regex", "bug", "compile", "compiler", "refactor", "sql",
    "query", "api", "endpoint", "python", "javascript", "typescript", "java", "rust", "golang",
    "bash", "shell", "docker", "dockerfile", "kubernetes", "manifest", "git", "css", "html",
    "react", "node", "flask", "express", "django", "pytest", "junit", "unit tests", "linter",
    "type hints", "class", "method", "variable", "stack trace", "exception", "segfault",
    "typeerror", "null", "null pointer", "cli", "parser", "lru cache", "solidity", "contract",
    "github actions", "workflow", "yaml", "div", "vscode", "repo", "in go", "async", "await",
    "callback", "goroutine", "goroutines", "rustc", "ssh", "curl", "webhook", "boto3",
    "schema", "postgres", "mysql", "let", "const", "var", "one-liner", "snippet", "token",
    "código", "función", "funcion", "programa", "consulta", "fonction", "skript", "funktion",
    "função", "bash-skript",
)  # fmt: skip

ANALYSIS: Final = (
    "summarize", "summarise", "summary", "tl;dr", "tl dr", "gist", "analyze", "analyse",
    "analysis", "compare", "comparison", "pros and cons", "trade-offs", "tradeoffs", "evaluate",
    "review", "assess", "risks", "root cause", "design", "architect", "architecture",
    "difference between", "differential", "for and against", "estimate", "underperforming",
    "what happened", "extract", "slowest", "findings", "migration plan", "sensitivity analysis",
    "resume", "resumir", "resumen", "analiza", "compara", "diseña", "ventajas", "desventajas",
    "résumer", "résume", "analyse", "compromis", "zusammen", "zusammenfassen", "fasse",
    "entwirf", "analysiere", "resuma", "vantagens", "desvantagens", "analise",
)  # fmt: skip

CJK: Final[Mapping[str, tuple[str, ...]]] = {
    "proof": ("证明", "推导", "証明", "導出"),
    "reasoning": (
        "一步一步", "逐步", "为什么", "為什麼", "权衡", "なぜ", "ステップ", "トレードオフ",
    ),
    "multi_step": ("首先", "然后", "最后", "まず", "次に", "最後に"),
    "technical": (
        "架构", "并发", "数据库", "分布式", "同步", "缓存", "系统", "アーキテクチャ",
        "データベース", "同時実行", "キャッシュ", "システム", "在庫管理",
    ),
    "creative": (
        "诗", "故事", "小说", "歌词", "詩", "物語", "小説", "歌詞", "俳句",
        "書き直", "改写", "润色",
    ),
    "agentic": ("执行", "浏览", "実行"),
    "greeting": ("你好", "谢谢", "こんにちは", "ありがとう", "おはよう", "早上好"),
    "question_fact": ("多少", "是什么", "怎么样", "高さ", "何ですか", "は？"),
    "math": ("方程", "积分", "無理数", "无理数", "根号", "求根", "√", "計算", "计算"),
    "code_words": ("代码", "函数", "コード", "関数", "python", "バグ"),
    "analysis": ("总结", "摘要", "要約", "设计", "設計", "分析"),
    "imperative": ("写", "设计", "書いて", "設計して", "直して", "してください", "请"),
}  # fmt: skip
