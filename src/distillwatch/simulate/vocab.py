"""Word lists and templates for the prompt generator (hand-written; no external data).

Templates use ``{slot}`` markers: a slot names a list in ``VOCAB`` or a number
range ``{int:LO-HI}``.  Benign first turns always carry at least one
high-entropy slot (an identifier, a number, a name) so two different users
almost never send the same string by accident, as in real traffic.
"""

from __future__ import annotations

# fmt: off
VOCAB: dict[str, list[str]] = {
    "lang": ["Python", "TypeScript", "JavaScript", "Go", "Rust", "Java", "C#", "C++", "Kotlin", "Swift", "Ruby", "PHP",
             "Scala", "Elixir", "Haskell", "Bash", "SQL", "R", "Julia", "Dart", "Lua", "Clojure", "OCaml", "Zig"],
    "framework": ["Django", "FastAPI", "Flask", "React", "Next.js", "Vue", "Svelte", "Spring Boot", "Express", "Rails",
                  "Laravel", "ASP.NET Core", "Angular", "Gin", "Actix", "Phoenix", "NestJS", "Remix", "pandas",
                  "PyTorch", "Polars", "SQLAlchemy", "Prisma", "Tailwind", "Electron", "Flutter", "SwiftUI"],
    "ds": ["LRU cache", "trie", "min-heap", "interval tree", "skip list", "ring buffer", "union-find structure",
           "bloom filter", "segment tree", "B-tree", "rope", "persistent vector", "priority queue", "radix tree",
           "sparse matrix", "graph adjacency list", "rate limiter", "consistent-hash ring", "circular deque",
           "order book", "event queue", "token bucket", "Fenwick tree", "suffix array"],
    "ds_a": ["an LRU cache", "a trie", "a min-heap", "an interval tree", "a skip list", "a ring buffer",
             "a union-find structure", "a bloom filter", "a segment tree", "a B-tree", "a rope",
             "a persistent vector", "a priority queue", "a radix tree", "a sparse matrix", "a graph adjacency list",
             "a rate limiter", "a consistent-hash ring", "a circular deque", "an order book", "an event queue",
             "a token bucket", "a Fenwick tree", "a suffix array"],
    "algo": ["Dijkstra's shortest path", "topological sort", "A* search", "Kruskal's MST", "quickselect",
             "KMP string matching", "Levenshtein distance", "the Bellman-Ford algorithm", "Tarjan's SCC",
             "reservoir sampling", "a k-means clustering loop", "binary search on the answer", "merge sort",
             "the Floyd-Warshall algorithm", "a sliding-window maximum", "the Aho-Corasick automaton",
             "a max-flow with Edmonds-Karp", "a Raft leader election", "a mark-and-sweep collector",
             "an LL(1) parser", "a Pratt expression parser", "run-length encoding", "Huffman coding",
             "a consistent snapshot algorithm"],
    "func_task": ["parses a CSV file and returns the rows grouped by {field}", "retries a failing HTTP call with exponential backoff",
                  "deduplicates a list of {entity} records by {field}", "validates an email address and a phone number",
                  "converts a nested JSON object into a flat dictionary", "streams a large log file and counts errors per hour",
                  "paginates through a REST API and collects every {entity}", "computes a moving average over a time series",
                  "merges two sorted lists of {entity} without duplicates", "reads environment variables with defaults",
                  "renames every file in a folder by its creation date", "caches the results of an expensive call",
                  "splits text into sentences and counts words", "finds the {int:3-20} most frequent {field} values",
                  "normalises messy date strings into ISO 8601", "diffs two config files and prints the changes",
                  "schedules a job every {int:2-59} minutes", "uploads a file in chunks with progress reporting",
                  "builds a histogram of {field} for all {entity} rows", "signs and verifies a JWT token"],
    "entity": ["customer", "invoice", "order", "user", "product", "ticket", "transaction", "shipment", "patient",
               "student", "sensor reading", "booking", "employee", "repository", "article", "subscription", "listing",
               "payment", "device", "session", "course", "claim", "lead", "warehouse item"],
    "field": ["email", "country", "created date", "status", "price", "category", "user id", "zip code", "last name",
              "department", "region", "score", "currency", "priority", "tag", "supplier", "age bracket", "city"],
    "error": ["TypeError: 'NoneType' object is not subscriptable", "KeyError: 'id'", "IndexError: list index out of range",
              "segmentation fault (core dumped)", "java.lang.NullPointerException", "undefined is not a function",
              "cannot borrow `self` as mutable more than once at a time", "ModuleNotFoundError: No module named '{ident}'",
              "panic: runtime error: index out of range [{int:1-99}] with length {int:1-99}",
              "ECONNREFUSED 127.0.0.1:{int:1024-65000}", "deadlock detected", "error TS2339: Property '{ident}' does not exist",
              "ValueError: could not convert string to float: '{int:1-999},{int:10-99}'",
              "RecursionError: maximum recursion depth exceeded", "CORS policy: No 'Access-Control-Allow-Origin' header",
              "SSL: CERTIFICATE_VERIFY_FAILED", "OOMKilled", "IntegrityError: duplicate key value violates unique constraint",
              "Uncaught (in promise) TypeError: Failed to fetch", "ConcurrentModificationException",
              "stack overflow in thread main", "exit status 137", "401 Unauthorized from the {framework} backend"],
    "symptom": ["works locally but fails in CI", "only fails on every second run", "is ten times slower since yesterday",
                "leaks memory over a few hours", "returns stale data after an update", "hangs when the input is empty",
                "crashes only in production", "gives a different answer on Windows", "fails for non-ASCII input",
                "times out under load", "double-counts some rows", "breaks after upgrading {framework}"],
    "ident": [],  # generated: syllable identifiers (see text.py)
    "name": ["Ana", "Ben", "Chloe", "Dmitri", "Elif", "Farah", "Gustavo", "Hana", "Ivan", "Jun", "Kofi", "Lena", "Mateo",
             "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tomoko", "Uma", "Viktor", "Wei", "Ximena", "Yusuf",
             "Zara", "Aiko", "Bruno", "Carmen", "Dev", "Emeka", "Freya", "Giulia", "Hamid", "Ines", "Jonas", "Kira",
             "Luca", "Maya", "Nils", "Olga", "Pablo", "Rafael", "Sana", "Tariq", "Ursula", "Vera", "Wanjiru"],
    "city": ["Lisbon", "Nairobi", "Osaka", "Toronto", "Krakow", "Austin", "Lyon", "Seoul", "Bogota", "Melbourne",
             "Cairo", "Oslo", "Pune", "Porto", "Hanoi", "Denver", "Glasgow", "Leipzig", "Santiago", "Manila",
             "Montreal", "Istanbul", "Accra", "Tallinn", "Valencia", "Cebu", "Graz", "Utrecht", "Kyoto", "Lagos"],
    "topic": ["remote work", "urban gardening", "electric bikes", "sleep hygiene", "the history of the printing press",
              "coral reef bleaching", "learning a second language as an adult", "open-source licensing",
              "microplastics in rivers", "home espresso", "the four-day work week", "quantum computing basics",
              "minimalist travel", "board game design", "solar panels on apartment balconies", "carbon pricing",
              "sourdough baking", "volunteer firefighting", "data privacy for small shops", "vertical farming",
              "marathon training for beginners", "jazz improvisation", "medieval trade routes", "tiny houses",
              "public libraries", "night photography", "rewilding", "bird migration", "fermentation", "chess openings"],
    "doc": ["cover letter", "blog post", "product description", "wedding toast", "LinkedIn post", "short story",
            "newsletter intro", "apology email", "grant abstract", "press release", "poem", "birthday message",
            "conference talk abstract", "job posting", "customer FAQ", "eulogy", "landing page headline", "haiku",
            "recipe intro", "meeting summary", "complaint letter", "thank-you note", "speech", "song chorus"],
    "tone": ["friendly", "formal", "funny", "concise", "warm", "persuasive", "neutral", "enthusiastic", "calm",
             "professional but relaxed", "playful", "serious", "upbeat", "diplomatic"],
    "audience": ["my manager", "first-year students", "our customers", "a hiring committee", "my grandmother",
                 "a group of ten-year-olds", "investors", "the neighbourhood association", "new employees",
                 "a technical audience", "my landlord", "the city council", "hobbyists", "a nurse team"],
    "natlang": ["Spanish", "French", "German", "Japanese", "Portuguese", "Italian", "Korean", "Mandarin Chinese",
                "Dutch", "Polish", "Turkish", "Arabic", "Hindi", "Swedish", "Vietnamese", "Indonesian", "Greek",
                "Czech", "Ukrainian", "Finnish", "Hebrew", "Thai", "Romanian", "Danish"],
    "phrase": ["the meeting is moved to {weekday} at {int:1-12} pm", "please find the invoice for order {int:1000-99999} attached",
               "our store in {city} will be closed on {weekday}", "I'm sorry for the late reply, I was travelling",
               "could you send me the updated contract by {weekday}", "the package was delivered to the wrong address",
               "we loved staying at your place in {city}", "my flight number is {int:100-999} and it lands at {int:1-12}:{int:10-59}",
               "the results of test {int:2-40} are in the appendix", "thank you for the lovely dinner with {name}",
               "the deadline for the {doc} is next {weekday}", "I would like to cancel subscription {int:10000-99999}",
               "the server will be down for maintenance for {int:2-9} hours", "{name} will take over the project from Monday"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "character": ["a grumpy lighthouse keeper", "a detective in 1920s {city}", "a starship engineer", "a medieval innkeeper",
                  "a retired pirate", "a job interviewer for a startup", "a Socratic philosophy tutor", "a dragon who loves tea",
                  "a noir narrator", "a patient language partner", "a dungeon master", "a time traveller from {int:1200-1900}",
                  "a tired barista", "a museum guide", "a space station AI", "a village healer", "a chess coach"],
    "scenario": ["we are stuck in a snowed-in cabin", "I have just arrived in your town with a strange map",
                 "I want to practise ordering food", "the ship's reactor is failing", "I'm negotiating a salary",
                 "a mysterious letter arrived this morning", "we meet at a crowded night market",
                 "I'm a new recruit on my first day", "the heist starts at midnight", "the king has gone missing"],
    "math_obj": ["the integral of x^{int:2-9} * e^(-{int:2-9}x) from 0 to infinity", "the eigenvalues of [[{int:1-9}, {int:1-9}], [{int:1-9}, {int:1-9}]]",
                 "the limit of (1 + {int:2-9}/n)^n as n goes to infinity", "the derivative of sin({int:2-9}x) * ln(x^2 + {int:1-9})",
                 "how many ways to seat {int:5-12} people around a round table", "the probability of at least {int:2-5} sixes in {int:6-20} rolls",
                 "the sum of the first {int:20-500} odd squares", "whether {int:1000-99999} is prime",
                 "the remainder of {int:2-9}^{int:100-999} mod {int:7-97}", "the expected number of coin flips to see {int:2-6} heads in a row",
                 "the area between y = x^2 and y = {int:2-9}x", "the general solution of y'' + {int:1-9}y' + {int:1-9}y = 0",
                 "the gcd of {int:100-9999} and {int:100-9999}", "the variance of a binomial with n = {int:10-99} and p = 0.{int:1-9}",
                 "the number of spanning trees of K_{int:4-9}", "the radius of convergence of sum n^{int:1-5} x^n / {int:2-9}^n"],
    "word_problem": ["A train leaves {city} at {int:6-11}:{int:10-59} going {int:60-140} km/h and another leaves {city} an hour later at {int:80-180} km/h",
                     "{name} invests {int:1000-50000} at {int:2-9}% compounded monthly for {int:2-30} years",
                     "A tank fills in {int:2-12} hours and drains in {int:3-20} hours",
                     "A shop sells {int:20-400} items a day and raises the price by {int:2-25}%, losing {int:1-15}% of sales",
                     "{name} has {int:3-12} red and {int:3-12} blue marbles and draws {int:2-5} without replacement",
                     "A ladder {int:3-12} m long slides down a wall at {int:1-5} cm/s",
                     "A recipe for {int:2-8} people needs {int:100-900} g of flour and I am cooking for {int:3-30}"],
    "dataset": ["monthly sales for {int:3-60} stores", "survey answers from {int:100-9000} respondents", "server latency logs",
                "A/B test results with {int:1000-90000} users per arm", "churn data for a subscription app",
                "hospital readmission records", "sensor data sampled every {int:2-60} seconds", "website funnel events",
                "student grades across {int:2-12} semesters", "energy use of {int:10-500} buildings", "a CRM export of {entity} rows",
                "support tickets tagged by {field}", "stock prices of {int:2-40} companies", "weather data for {city}"],
    "question": ["what drives the drop in week {int:2-52}", "whether the difference is statistically significant",
                 "which segment is most profitable", "how to forecast the next {int:2-24} months", "what the outliers mean",
                 "how to present this to {audience}", "which features matter most", "whether there is seasonality",
                 "how to handle the missing values in {field}", "what sample size I would need"],
    "tool_task": ["find all open issues labelled '{ident}' in our repo and summarise them",
                  "check the weather in {city} for {weekday} and add it to my calendar",
                  "look up order {int:10000-999999} in the database and email the customer",
                  "run the test suite, find the failing test and fix it", "search the docs for how to configure {framework} caching",
                  "book a meeting room for {int:2-12} people on {weekday} afternoon", "read {ident}.csv and plot {field} by month",
                  "open a pull request that bumps {framework} to the latest version", "grep the logs for '{error}'",
                  "list the {int:3-20} largest files in the project and propose what to delete",
                  "fetch the exchange rate for {natlang} currency and convert {int:10-9999}",
                  "create a Jira ticket for the bug {name} reported", "query the warehouse for yesterday's {entity} count"],
    "project": ["a web shop", "an internal dashboard", "a CLI tool", "a data pipeline", "a mobile app", "a game mod",
                "a home-automation script", "a university assignment", "a microservice", "a Slack bot", "a scraper",
                "a compiler course project", "an ETL job", "a browser extension", "a trading bot", "a portfolio site",
                "a thesis experiment", "a hackathon prototype", "a billing system", "an open-source library"],
    "req": ["handle empty input gracefully", "run in O(n log n)", "be thread-safe", "include type hints",
            "avoid external dependencies", "stream results instead of loading everything", "log every retry",
            "be fully covered by unit tests", "support unicode", "expose a small public API", "be idempotent",
            "return errors instead of raising", "work on {lang} {int:2-3}.{int:0-12}", "cap memory at {int:64-512} MB",
            "be configurable through a YAML file", "use no global state", "document every function"],
    "opener": ["", "", "", "", "Hi! ", "Hey, ", "Hello, ", "Quick question: ", "Please help: ", "Ok. ", "Hi there. ",
               "Good morning! ", "I need some help. ", "Can you help me? ", "Hello! "],
    "closer": ["", "", "", "", " Thanks!", " Thank you.", " Thanks in advance.", " Keep it short please.",
               " Explain like I'm new to this.", " Be detailed.", " No need for a long intro.", " Appreciate it!",
               " Bullet points are fine.", " This is urgent."],
    "context": ["", "", "", "I'm working on {project}. ", "For {project}: ", "Context: {project} in {lang}. ",
                "My team at {ident} is building {project}. ", "This is for {project} I'm doing with {name}. "],
    "followup": ["Thanks. Now do the same for {field}.", "Can you explain step {int:2-9} again, the one with {field}?",
                 "Make it more {tone} for {audience}.", "Can you make the part about {field} shorter?",
                 "Perfect, and in {natlang}?", "ok, continue with the {field} part",
                 "Give me {int:2-6} alternatives, ideally {tone}.", "Summarise that in {int:2-5} sentences for {name}.",
                 "Shorter please, max {int:20-200} words.", "{name} asked whether this works for {entity} data too?",
                 "Hmm, that's not quite it. {name} thinks it should be more {tone}.", "What would {audience} say about that?"],
    "followup_code": ["That gives me '{error}'. What now?", "Could you add comments to `{ident}`?",
                      "Why did you choose that approach over {algo}?", "Now write tests for `{ident}`.",
                      "What if the input has {int:10-100000} rows?", "Rewrite it in {lang}.",
                      "Hmm, that's not quite it. {name} says it should {req}.", "Great. What's next for {project}?",
                      "Can you double-check step {int:2-9}? I get {int:2-9999}.",
                      "It still {symptom}. Here's the log line: `{error}`", "Use {framework} instead of plain {lang}."],
}

# Specifics people add to a request: versions, sizes, deadlines, names.  Appended to most
# benign turns, they are what makes two users' requests differ even on the same task.
DETAILS: list[str] = [
    " It's for {project}, due {weekday}.",
    " Context: {int:2-40} people on the team, budget about {int:100-9000} dollars.",
    " My deadline is {weekday} at {int:1-12}:{int:10-59}.",
    " {name} from my team suggested I ask you (ref {int:100-99999}).",
    " This is attempt {int:2-9}; version {int:2-40} of the draft.",
    " I'm in {city}, if that matters, and it's for {audience}.",
    " Keep it under {int:50-900} words; it's for {name}.",
]
# Only after technical requests (code, debugging, agents, multi-step builds).
TECH_DETAILS: list[str] = [
    " I'm on {lang} {int:2-3}.{int:0-12} with {framework} {int:1-9}.{int:0-30}.",
    " We have roughly {int:10-90000} {entity} records.",
    " I've been stuck on this for {int:2-59} minutes.",
    " Ticket {ident}-{int:100-9999}.",
    " The file is {ident}.{int:1-99}.txt, about {int:2-900} KB.",
]
DETAIL_SHARE_FIRST = 0.85
DETAIL_SHARE_FOLLOWUP = 0.75

# Acknowledgements everybody types; the only benign prompts many users share by nature.
GENERIC_FOLLOWUPS: list[str] = ["thanks!", "ok continue", "Thank you!", "continue", "go on", "yes please", "perfect, thanks",
                                "Can you make it shorter?", "more detail please", "thx"]
GENERIC_FOLLOWUP_SHARE = 0.06

COT_PHRASES: list[str] = [
    "Think step by step.",
    "Let's think step by step.",
    "Show your reasoning step by step before the final answer.",
    "Explain your full reasoning first, then give the final answer.",
    "Walk me through your thought process in detail.",
    "Reason carefully through each step and show all intermediate work.",
    "Before answering, lay out your reasoning in numbered steps.",
    "Please show every step of your thinking, not just the answer.",
]

# System prompts customers commonly send; identical strings across many users are normal here.
GENERIC_SYSTEMS: list[str] = [
    "You are a helpful assistant.",
    "You are a helpful assistant. Answer concisely.",
    "You are an expert software engineer. Write clean, well-tested code.",
    "You are a friendly tutor. Explain concepts simply and check understanding.",
    "You are a professional translator. Preserve tone and formatting.",
    "You are a customer-support assistant. Be polite and precise.",
    "You are a data analyst. Use tables where helpful.",
    "You are a creative writing partner.",
]

COT_SYSTEMS: list[str] = [
    "You are an expert assistant. Before every answer, reason step by step and show all of your intermediate reasoning, then state the final answer.",
    "Always think through the problem in detail, writing out your full chain of reasoning, before you respond.",
    "You are a meticulous problem solver. Show your complete step-by-step reasoning for every task, then give the answer.",
    "Explain your reasoning exhaustively and step by step; never skip steps; end with a clearly marked final answer.",
]

# First turns of ordinary users, per family.
BENIGN: dict[str, list[str]] = {
    "chat": [
        "{opener}what's a good name for a {tone} {ident} the cat? she is {int:1-19} years old.{closer}",
        "{opener}can you recommend {int:2-9} books about {topic}?{closer}",
        "{opener}I have {int:2-14} days in {city}, what should I not miss?{closer}",
        "{opener}is it normal that {topic} feels overwhelming? I started {int:2-30} weeks ago.{closer}",
        "{opener}explain {topic} to {audience} in a few sentences.{closer}",
        "{opener}what are the pros and cons of {topic}? asking for {name}.{closer}",
        "{opener}my friend {name} says {topic} is overrated. thoughts?{closer}",
        "{opener}give me a {tone} fun fact about {topic} for a quiz on {weekday}.{closer}",
        "{opener}help me plan a {int:2-6}-hour day trip from {city} with a budget of {int:20-400} euros.{closer}",
    ],
    "writing": [
        "{opener}{context}write a {tone} {doc} for {audience} about {topic}.{closer}",
        "{opener}Draft a {doc} for {name}, who is leaving after {int:2-30} years. Make it {tone}.{closer}",
        "{opener}Rewrite this to sound more {tone}: \"{phrase}\"{closer}",
        "{opener}I need a {doc} of about {int:50-800} words on {topic}, for {audience}.{closer}",
        "{opener}Proofread my {doc}: \"{phrase}, and {phrase}.\"{closer}",
        "{opener}Give me {int:3-12} title ideas for a {doc} about {topic}.{closer}",
        "{opener}Turn these notes into a {tone} {doc}: {phrase}; {phrase}.{closer}",
    ],
    "coding": [
        "{opener}{context}Write a {lang} function that {func_task}.{closer}",
        "{opener}{context}How do I implement {ds_a} in {lang}? It should {req}.{closer}",
        "{opener}In {framework}, what's the cleanest way to {func_task}?{closer}",
        "{opener}{context}Can you write a {lang} class `{ident}` that wraps {ds_a}?{closer}",
        "{opener}Show me {algo} in {lang} with a short example on {int:5-50} nodes.{closer}",
        "{opener}{context}Convert this {lang} snippet to {lang}: `def {ident}(xs): return sorted(xs)[:{int:2-20}]`{closer}",
        "{opener}Write a SQL query that returns the top {int:3-50} {entity} rows by {field} per {field}.{closer}",
        "{opener}{context}Generate a {framework} endpoint `/{ident}` that lists {entity} records.{closer}",
        "{opener}What's the idiomatic {lang} way to {func_task}?{closer}",
    ],
    "debugging": [
        "{opener}{context}My {lang} code throws `{error}`. Here's the line: `{ident} = load_{ident}(cfg[{int:0-9}])`. Why?{closer}",
        "{opener}Our {framework} app {symptom}. Where would you start looking?{closer}",
        "{opener}{context}Getting `{error}` when I call `{ident}()`. It {symptom}.{closer}",
        "{opener}Why does this {lang} loop never end? `while {ident} < {int:2-999}: {ident} += step`{closer}",
        "{opener}{context}After upgrading {framework}, the build fails with `{error}`. Any ideas?{closer}",
        "{opener}The test `test_{ident}` {symptom}. How do I debug that?{closer}",
    ],
    "math": [
        "{opener}What is {math_obj}?{closer}",
        "{opener}Can you help me compute {math_obj}? I got a different answer than my textbook.{closer}",
        "{opener}{word_problem}. How long until they meet / what's the result?{closer}",
        "{opener}Prove that the sum of the first {int:3-99} cubes is a perfect square.{closer}",
        "{opener}{word_problem}. Can you set up the equations?{closer}",
        "{opener}I'm stuck on homework problem {int:1-60}: find {math_obj}.{closer}",
    ],
    "analysis": [
        "{opener}I have {dataset}. How should I figure out {question}?{closer}",
        "{opener}{context}Given {dataset}, {question}? Suggest an approach.{closer}",
        "{opener}Compare {topic} and {topic} for {audience}: a short table please.{closer}",
        "{opener}What are the main risks of {topic} for a company of {int:5-5000} people?{closer}",
        "{opener}Summarise the argument for and against {topic} in {int:3-8} bullet points.{closer}",
        "{opener}Here are numbers from {dataset}: {int:10-999}, {int:10-999}, {int:10-999}, {int:10-999}. What stands out?{closer}",
    ],
    "translation": [
        "{opener}Translate to {natlang}: \"{phrase}\"{closer}",
        "{opener}How do you say \"{phrase}\" in {natlang}, {tone} please?{closer}",
        "{opener}Translate this into {natlang} and {natlang}: {phrase}.{closer}",
        "{opener}Is this {natlang} correct? I wrote it for {name}: \"{phrase}\"{closer}",
    ],
    "roleplay": [
        "{opener}Let's roleplay. You are {character} and {scenario}. I'm {name}.{closer}",
        "{opener}Pretend to be {character}. {scenario}. Stay in character for {int:3-20} turns.{closer}",
        "{opener}You are {character}. I walk in and say: \"{phrase}\"{closer}",
        "{opener}Act as {character} so I can practise {natlang}: {scenario}.{closer}",
    ],
    "agentic": [
        "{opener}Please {tool_task}.{closer}",
        "{opener}{context}Use the tools to {tool_task}, then report back.{closer}",
        "{opener}Can you {tool_task} and also {tool_task}?{closer}",
        "{opener}{context}Go ahead and {tool_task}. Ask me before deleting anything.{closer}",
    ],
    "long_horizon": [
        "{opener}{context}Let's build {project} step by step. First, design the {ds} layer in {lang}.{closer}",
        "{opener}I want to migrate {project} from {framework} to {framework} over the next {int:2-12} weeks. Plan it with me.{closer}",
        "{opener}{context}Help me write a {int:3-12}-chapter outline for a book on {topic}, then we'll draft chapter 1.{closer}",
        "{opener}We'll refactor `{ident}` module by module. There are {int:4-40} modules; start with the first.{closer}",
    ],
}

# Attack task-generation frames: how a harvesting pipeline phrases a task.
# Each frame is a header and a closing instruction around a family body; the
# campaign fixes a few (header, closer) pairs as its templates.
ATTACK_HEADERS: list[list[str]] = [
    ["Task {int:1-99999}: ", "Problem {int:1-99999}: ", "Exercise #{int:1-99999}: "],
    ["You are given the following task. ", "Here is a task for you. ", "Consider the following task. "],
    ["Solve the following carefully. ", "Complete this task thoroughly. ", "Work on the task below. "],
    ["[{ident}] ", "<task id=\"{int:1-99999}\"> ", "### Task {ident}\n"],
    ["Instruction: ", "Request: ", "Prompt: "],
    ["As a senior engineer, ", "Acting as an expert, ", "As a domain specialist, "],
    ["", "", ""],
    ["Context: synthetic evaluation. ", "Context: internal benchmark. ", "Context: training exercise. "],
]

ATTACK_BODIES: dict[str, list[str]] = {
    "coding": [
        "Implement {ds_a} in {lang}. Requirements: it must {req}; it must {req}; include unit tests.",
        "Write a production-quality {lang} implementation of {algo}. It must {req} and {req}.",
        "Write a {lang} function that {func_task}. Constraints: {req}; {req}.",
        "Using {framework}, build a module that {func_task}. It must {req}.",
    ],
    "debugging": [
        "The following {lang} program fails with `{error}`: `{ident}({ident}, {int:0-999})`. Diagnose the root cause and give a fixed version.",
        "A {framework} service {symptom}. List hypotheses, the evidence for each, and the fix.",
    ],
    "agentic": [
        "You have access to tools. Goal: {tool_task}. Plan each tool call, call the tools, and report the final state.",
        "Act as an autonomous agent with shell and browser tools. Objective: {tool_task}. Think before each action.",
        "Given tools search, read_file, write_file and run_tests: {tool_task}. Output every tool call as JSON.",
    ],
    "long_horizon": [
        "Multi-step project: build {project} in {lang}. Step {int:1-12} of {int:12-30}: design the {ds} component, then continue with the next step.",
        "Plan and execute a {int:5-20}-step migration of {project} from {framework} to {framework}. Produce step {int:1-5} in full.",
    ],
    "math": [
        "Compute {math_obj}. Give an exact answer.",
        "{word_problem}. Solve it completely and verify the answer.",
        "Prove or disprove: the sum of the first n odd numbers equals n^2 for n = {int:3-999}.",
    ],
    "analysis": [
        "Dataset: {dataset}. Question: {question}. Produce a rigorous analysis plan and conclusion.",
        "Evaluate the claim that {topic} reduces costs by {int:5-60}%. Weigh the evidence and conclude.",
    ],
    "chat": ["Answer the question: what are the pros and cons of {topic}? Be comprehensive."],
    "writing": ["Write a {tone} {doc} about {topic} for {audience}. Be comprehensive."],
    "translation": ["Translate into {natlang}, preserving tone: \"{phrase}\""],
    "roleplay": ["Play {character}; {scenario}. Produce a full scene."],
}

ATTACK_CLOSERS: list[list[str]] = [
    [" Explain your reasoning step by step before the final answer.", " Show your reasoning step by step, then the final answer."],
    [" Provide the complete solution.", " Give the full solution."],
    [" Format: reasoning, then final answer.", " Structure: reasoning first, answer last."],
    [" Be exhaustive.", " Leave nothing out."],
    [" Include edge cases and complexity analysis.", " Cover edge cases and complexity."],
    [" Respond in English.", " Answer in English."],
]

# Response openings: the first sentences of the model's answer (the field is bounded).
RESPONSES: dict[str, list[str]] = {
    "chat": ["Great question! Here are a few thoughts on {topic}.", "Sure. {topic} is a big subject, so here is a short take.",
             "Happy to help. A few options stand out for {city}."],
    "writing": ["Here's a {tone} draft you can adapt:", "Sure, here is a version for {audience}:", "Here are some options:"],
    "coding": ["Here's a {lang} implementation:", "You can do this with a small helper. In {lang}:",
               "Below is a version that should {req}:"],
    "debugging": ["The error usually means a value is missing where the code expects one.",
                  "This looks like a race between two updates; here's how to confirm it.",
                  "The stack trace points at the call to `{ident}`. Let's check what it receives."],
    "math": ["Let's set up the problem.", "We can solve this directly.", "Start from the definition."],
    "analysis": ["A good first step is to look at the distribution of {field}.", "Here's how I would approach it:",
                 "Short answer: it depends on the segment. Details below."],
    "translation": ["Here's the translation into {natlang}:", "In {natlang}, a natural way to say it is:"],
    "roleplay": ["*looks up slowly* Well, well. {name}, is it?", "*the door creaks* Welcome, traveller.", "Ah, you're finally here."],
    "agentic": ["I'll start by checking the current state.", "Calling the search tool first.", "Plan: 1) look up the data 2) act 3) report."],
    "long_horizon": ["Great, let's lay out the plan first.", "Step 1 is the foundation, so let's be careful here.",
                     "Here's a roadmap, then the first piece in detail."],
}
COT_RESPONSE_PREFIX: list[str] = [
    "Let me reason through this step by step. ",
    "Step 1: understand the problem. ",
    "I'll think this through carefully before answering. ",
]
# fmt: on

SYLLABLES: list[str] = [
    "ka", "ro", "mi", "ten", "lo", "ser", "vi", "dan", "pa", "qu", "zen", "bo", "lu", "mar", "ti", "gor",
    "ne", "sa", "fi", "tor", "xe", "ly", "da", "cor", "pi", "wen", "hu", "rak", "so", "bel", "ju", "nox",
]
