"""The commented starter config that ``llmswitch init`` writes."""

STARTER = """\
# llmswitch configuration. Every key below is optional unless marked; the values shown
# are the defaults. Reference: README.md.

[server]
host = "127.0.0.1"        # "0.0.0.0" to serve the whole LAN
port = 8080
grace_s = 30              # on SIGTERM, in-flight streams get this long to finish
max_body_bytes = 20000000

[store]
path = "llmswitch.db"     # SQLite request log and spend

[health]
interval_s = 10           # probe every backend this often
failures_to_down = 3      # consecutive failed probes before a backend is down

[budget]
daily_usd = 5.0           # cloud models are skipped once a budget is spent
monthly_usd = 50.0
# weekly_usd = 20.0
# alert_at = [0.5, 0.8, 1.0]  # WARN log, gauge, and a POST to webhook_url at these shares
# webhook_url = "http://127.0.0.1:9000/llmswitch-budget"

[routing]
exhaustion_status = 503   # status when no model can serve a request
exhaustion_retry_after_s = 120  # its Retry-After (OpenClaw hands off at once with 120)
profile = "balanced"      # eco | balanced | premium, or one of [profiles.*]
metered_cloud = []        # task types that may use priced cloud models; ["*"] for all
# self_model = "qwen-small"   # where heartbeats and greetings go (default: smallest local)
fallback_model = "best-local"  # when no model meets a request's floor: the best local
                               # model answers; or a model id, or "none" for a 503
# classifier = "model"        # also ask a small local model to classify
# classifier_model = "qwen-small"

# Per task type, the model `auto` tries first.
# [overrides]
# code = "qwen-coder"

# Rules run before classification; the built-in ones (heartbeat, cron, /status, /model,
# /new, /reset, greetings → self model) apply unless you write your own list.
# [[rules]]
# name = "no-weather"
# priority = 5
# pattern = "weather"
# action = "reject"          # route_self | route | classify | reject | queue
# status = 403
# message = "ask a weather app"

# A backend is one server. API keys are never written here: name the environment
# variable that holds the key. How the key is sent follows the kind or preset
# (anthropic: x-api-key, gemini: x-goog-api-key, others: bearer token); `auth` overrides.
[[backends]]
name = "laptop"                         # required
kind = "ollama"                         # openai | ollama | anthropic | gemini
base_url = "http://127.0.0.1:11434/v1"  # required: the OpenAI-compatible base URL
locality = "local"                      # local | lan | cloud
rpm = 0                                 # requests per minute, 0 = unlimited
tpm = 0                                 # tokens per minute, 0 = unlimited

# A model is what clients ask for. "auto" picks the cheapest model whose quality
# meets the request's difficulty (simple 0, medium 40, complex 65, reasoning 80).
[[models]]
id = "qwen-small"          # required: the name clients use
backend = "laptop"         # required
upstream = "qwen2.5:1.5b"  # the name sent upstream; defaults to id
quality = 20               # 0-100
context_window = 32768
cost_input_per_mtok = 0.0  # USD per million tokens
cost_output_per_mtok = 0.0
fallbacks = []             # model ids to try next, in order
aliases = []               # other names clients may use

[[models]]
id = "qwen-coder"
backend = "laptop"
upstream = "qwen2.5-coder:7b"
quality = 50
context_window = 32768

# A LAN box running vLLM, and a metered cloud API, for example:
#
# [[backends]]
# name = "gpu-box"
# kind = "openai"
# base_url = "http://192.168.1.50:8000/v1"
# locality = "lan"
#
# [[backends]]
# name = "openai"
# kind = "openai"
# base_url = "https://api.openai.com/v1"
# api_key_env = "OPENAI_API_KEY"
# locality = "cloud"
#
# [[models]]
# id = "gpt-4o-mini"
# backend = "openai"
# quality = 70
# context_window = 128000
# cost_input_per_mtok = 0.15
# cost_output_per_mtok = 0.60
"""
