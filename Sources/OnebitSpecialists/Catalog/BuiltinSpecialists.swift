/// The built-in specialists' definitions, compiled into the binary in the same TOML users write.
enum BuiltinSpecialists {
    /// File name (without `.toml`) and text, in the order `specialists list` shows them.
    static let files: [(String, String)] = [
        ("magistrate", magistrate), ("librarian", librarian), ("quartermaster", quartermaster), ("anvil", anvil),
        ("sentinel", sentinel), ("scribe", scribe),
    ]

    static let magistrate = #"""
        name = "magistrate"
        description = "Scans a diff or a commit range for secrets (keys, tokens, high-entropy strings) and checks commit messages against Conventional Commits."
        core = "magistrate"
        tools = ["git"]
        system_prompt = "You are a careful code reviewer. In one or two sentences, tell the author what the scan found and what to do."
        input_schema = '''
        {"type":"object","properties":{
          "diff":{"type":"string","description":"A unified diff or any text to scan."},
          "repository":{"type":"string","description":"A git repository to scan."},
          "range":{"type":"string","description":"Commits of the repository to scan (default HEAD: all)."},
          "messages":{"type":"array","items":{"type":"string"},"description":"Commit messages to check."}},
         "anyOf":[{"required":["diff"]},{"required":["repository"]},{"required":["messages"]}],
         "additionalProperties":false}
        '''
        output_schema = '''
        {"type":"object","properties":{
          "clean":{"type":"boolean"},
          "secrets_found":{"type":"integer"},
          "findings":{"type":"array","items":{"type":"object","properties":{
            "rule":{"type":"string"},"severity":{"enum":["high","medium"]},"file":{"type":"string"},
            "line":{"type":"integer"},"commit":{"type":"string"},"excerpt":{"type":"string"}},
            "required":["rule","severity","file","line","commit","excerpt"],"additionalProperties":false}},
          "bad_commits":{"type":"integer"},
          "commits":{"type":"array","items":{"type":"object","properties":{
            "commit":{"type":"string"},"header":{"type":"string"},"ok":{"type":"boolean"},
            "problems":{"type":"array","items":{"type":"string"}}},
            "required":["commit","header","ok","problems"],"additionalProperties":false}},
          "explanation":{"type":"string","maxLength":160}},
         "required":["clean","secrets_found","findings","bad_commits","commits","explanation"],
         "additionalProperties":false}
        '''
        """#

    static let librarian = #"""
        name = "librarian"
        description = "Drafts a changelog section from the git history between two refs, grouped by Conventional Commit type, breaking changes first."
        core = "librarian"
        tools = ["git"]
        system_prompt = "You write release notes. In one or two sentences, say what this release brings."
        input_schema = '''
        {"type":"object","properties":{
          "repository":{"type":"string"},
          "from":{"type":"string","description":"The previous release's ref (exclusive); absent: from the first commit."},
          "to":{"type":"string","description":"The new release's ref (default HEAD)."},
          "commits":{"type":"array","items":{"type":"object","properties":{
            "hash":{"type":"string"},"message":{"type":"string"}},"required":["message"]}}},
         "anyOf":[{"required":["repository"]},{"required":["commits"]}],
         "additionalProperties":false}
        '''
        output_schema = '''
        {"type":"object","properties":{
          "range":{"type":"string"},
          "commits":{"type":"integer"},
          "breaking_changes":{"type":"integer"},
          "sections":{"type":"array","items":{"type":"object","properties":{
            "title":{"type":"string"},
            "entries":{"type":"array","items":{"type":"object","properties":{
              "commit":{"type":"string"},"type":{"type":"string"},"scope":{"type":"string"},
              "subject":{"type":"string"},"breaking":{"type":"boolean"}},
              "required":["commit","type","scope","subject","breaking"],"additionalProperties":false}}},
            "required":["title","entries"],"additionalProperties":false}},
          "markdown":{"type":"string"},
          "summary":{"type":"string","maxLength":160}},
         "required":["range","commits","breaking_changes","sections","markdown","summary"],
         "additionalProperties":false}
        '''
        """#

    static let quartermaster = #"""
        name = "quartermaster"
        description = "Triages an issue into type, severity and likely component, and ranks possible duplicates among given issues."
        core = "quartermaster"
        tools = []
        system_prompt = "You triage issues. In one sentence, say what kind of issue this is and where it belongs."
        input_schema = '''
        {"type":"object","properties":{
          "title":{"type":"string","minLength":1},
          "body":{"type":"string"},
          "components":{"type":"array","items":{"type":"object","properties":{
            "name":{"type":"string","minLength":1},"keywords":{"type":"array","items":{"type":"string"}}},
            "required":["name"]}},
          "issues":{"type":"array","items":{"type":"object","properties":{
            "id":{"type":["string","integer"]},"title":{"type":"string"},"body":{"type":"string"}},
            "required":["id","title"]}}},
         "required":["title"],"additionalProperties":false}
        '''
        output_schema = '''
        {"type":"object","properties":{
          "type":{"enum":["bug","security","performance","feature","docs","question"]},
          "severity":{"enum":["critical","high","medium","low"]},
          "component":{"type":"string"},
          "signals":{"type":"array","items":{"type":"string"}},
          "duplicates":{"type":"array","items":{"type":"object","properties":{
            "id":{"type":"string"},"title":{"type":"string"},"score":{"type":"number"}},
            "required":["id","title","score"],"additionalProperties":false}},
          "explanation":{"type":"string","maxLength":160}},
         "required":["type","severity","component","signals","duplicates","explanation"],
         "additionalProperties":false}
        '''
        """#

    static let anvil = #"""
        name = "anvil"
        description = "Runs a repository's build or test command and reports pass or fail with the last error lines, the exit status and the duration."
        core = "anvil"
        tools = ["git", "shell"]
        system_prompt = "You watch a build. In one or two sentences, say whether it passed and, if not, what broke."
        input_schema = '''
        {"type":"object","properties":{
          "repository":{"type":"string","minLength":1},
          "command":{"type":"string","minLength":1,"description":"Run with /bin/sh -c in the repository."},
          "commit":{"type":"string"},
          "timeout_seconds":{"type":"number","minimum":1,"maximum":86400}},
         "required":["repository","command"],"additionalProperties":false}
        '''
        output_schema = '''
        {"type":"object","properties":{
          "repository":{"type":"string"},
          "commit":{"type":"string"},
          "command":{"type":"string"},
          "status":{"enum":["pass","fail","timeout"]},
          "exit_status":{"type":"integer"},
          "duration_seconds":{"type":"number"},
          "error_lines":{"type":"array","items":{"type":"string"}},
          "explanation":{"type":"string","maxLength":160}},
         "required":["repository","commit","command","status","exit_status","duration_seconds","error_lines",
           "explanation"],
         "additionalProperties":false}
        '''
        """#

    static let sentinel = #"""
        name = "sentinel"
        description = "Checks a running onebit server: health and its latency, resident memory and the server-error rate from /metrics."
        core = "sentinel"
        tools = ["http"]
        system_prompt = "You keep watch over a server. In one sentence, say how it is doing."
        input_schema = '''
        {"type":"object","properties":{
          "url":{"type":"string","description":"The server, such as http://127.0.0.1:8080 (default: this server)."},
          "pid":{"type":"integer","minimum":1,"description":"Its process, for the memory reading (default: this one)."},
          "latency_budget_ms":{"type":"number","minimum":0},
          "error_rate_budget":{"type":"number","minimum":0,"maximum":1}},
         "additionalProperties":false}
        '''
        output_schema = '''
        {"type":"object","properties":{
          "url":{"type":"string"},
          "status":{"enum":["healthy","degraded","down"]},
          "healthy":{"type":"boolean"},
          "latency_ms":{"type":"number"},
          "requests":{"type":"integer"},
          "server_errors":{"type":"integer"},
          "error_rate":{"type":"number"},
          "rss_bytes":{"type":"integer"},
          "problems":{"type":"array","items":{"type":"string"}},
          "explanation":{"type":"string","maxLength":160}},
         "required":["url","status","healthy","latency_ms","requests","server_errors","error_rate","rss_bytes",
           "problems","explanation"],
         "additionalProperties":false}
        '''
        """#

    static let scribe = #"""
        name = "scribe"
        description = "Summarises a text or a file to a requested length: the most central sentences, which the model then polishes."
        core = "scribe"
        tools = ["files"]
        system_prompt = "You are a scribe. Rewrite these sentences as one short, clear summary."
        input_schema = '''
        {"type":"object","properties":{
          "text":{"type":"string"},
          "path":{"type":"string","minLength":1},
          "sentences":{"type":"integer","minimum":1,"maximum":50},
          "max_characters":{"type":"integer","minimum":20,"maximum":2000}},
         "anyOf":[{"required":["text"]},{"required":["path"]}],
         "additionalProperties":false}
        '''
        output_schema = '''
        {"type":"object","properties":{
          "source_sentences":{"type":"integer"},
          "sentences":{"type":"array","items":{"type":"string"}},
          "extract":{"type":"string"},
          "summary":{"type":"string","maxLength":2000}},
         "required":["source_sentences","sentences","extract","summary"],
         "additionalProperties":false}
        '''
        """#
}
