import OnebitModel
import Testing

private func render(
    _ source: String, messages: [JSONValue] = [], generationPrompt: Bool = false, tools: [JSONValue]? = nil,
    extra: [String: JSONValue] = [:]
) throws(TemplateError) -> String {
    try ChatTemplate(source: source).render(
        messages: messages, addGenerationPrompt: generationPrompt, bosToken: "<s>", eosToken: "</s>", tools: tools,
        extraContext: extra)
}

private func parseError(_ source: String) -> TemplateError? {
    do {
        _ = try ChatTemplate(source: source)
        return nil
    } catch {
        return error
    }
}

private func renderError(_ source: String) -> TemplateError? {
    do {
        _ = try render(source)
        return nil
    } catch {
        return error
    }
}

private let user: JSONValue = .object(["role": .string("user"), "content": .string("  Hi there \n")])

@Test func bitNetFallbackIsUsedWithoutATemplateOrForTheBitnetCppOne() throws {
    let bitnetCpp =
        "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + 'BITNETAssistant: ' }}{% endif %}"
    for source in [nil, "", "  \n", bitnetCpp] {
        let template = try ChatTemplate.resolved(from: source)
        #expect(template.source == ChatTemplate.bitNetTrainingFormat)
        let system: JSONValue = .object(["role": .string("system"), "content": .string("Be nice. ")])
        let text = try template.render(
            messages: [system, user], addGenerationPrompt: true, bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>")
        #expect(text == "<|begin_of_text|>System: Be nice.<|eot_id|>User: Hi there<|eot_id|>Assistant: ")
    }
    let own = try ChatTemplate.resolved(from: "{{ messages | length }}")
    #expect(own.source == "{{ messages | length }}")
}

@Test func bitNetFallbackJoinsTextParts() throws {
    let parts: JSONValue = .object([
        "role": .string("user"),
        "content": .array([
            .object(["type": .string("text"), "text": .string("a")]), .object(["type": .string("image")]),
            .object(["type": .string("text"), "text": .string("b ")]),
        ]),
    ])
    let text = try ChatTemplate.resolved(from: nil).render(
        messages: [parts], addGenerationPrompt: false, bosToken: "<s>", eosToken: "</s>")
    #expect(text == "<s>User: ab<|eot_id|>")
}

@Test func contextVariables() throws {
    #expect(
        try render("{{ tools is none }} {{ documents is none }} {{ bos_token }}{{ eos_token }}") == "True True <s></s>")
    let tool: JSONValue = .object(["name": .string("f")])
    #expect(try render("{{ tools | tojson }}", tools: [tool]) == "[{\"name\": \"f\"}]")
    #expect(try render("{{ add_generation_prompt }}", generationPrompt: true) == "True")
    #expect(
        try render(
            "{{ bos_token }}|{{ date_string }}", extra: ["bos_token": .string("B"), "date_string": .string("d")])
            == "B|d")
    #expect(try render("{{ messages[0].content | trim }}", messages: [user]) == "Hi there")
}

@Test func raiseExceptionCarriesTheMessageAndPlace() {
    let error = renderError("line one\n  {{ raise_exception('Roles must alternate') }}")
    #expect(error == TemplateError(message: "Roles must alternate", line: 2, column: 6))
}

@Test func strftimeNowFormatsTheCurrentDate() throws {
    let year = try render("{{ strftime_now('%Y') }}")
    #expect(year.count == 4 && year.allSatisfy(\.isNumber) && year >= "2024")
    #expect(try render("{{ strftime_now('%d %b %Y') }}").split(separator: " ").count == 3)
}

@Test func syntaxErrorsNameLineAndColumn() {
    let cases: [(String, Int, Int)] = [
        ("{% foo %}", 1, 4),
        ("a\n{% if x %}b", 2, 12),
        ("{{ x | nosuchfilter }}", 1, 8),
        ("{{ x is nosuchtest }}", 1, 9),
        ("line\n  {{ 1 + }}", 2, 10),
        ("{{ 'unterminated }}", 1, 4),
        ("{# never closed", 1, 1),
        ("{{ x ", 1, 1),
        ("{% for x in y %}{% endif %}", 1, 20),
        ("{% break %}", 1, 4),
        ("{{ (1 }}", 1, 7),
        ("{{ x ]] }}", 1, 6),
        ("{{ @ }}", 1, 4),
        ("{% for x in y recursive %}{% endfor %}", 1, 15),
        ("{% include 'other.html' %}", 1, 4),
        ("ok\r\n{% endfor %}", 2, 4),
    ]
    for (source, line, column) in cases {
        let error = parseError(source)
        #expect(
            error?.line == line && error?.column == column, "\(source.debugDescription): \(String(describing: error))")
        #expect(error?.description.contains("\(line):\(column)") ?? false)
    }
}

@Test func renderErrorsNameLineAndColumn() {
    let error = renderError("{% set x = 1 %}\n{{ 'a' + x }}")
    #expect(error?.line == 2 && error?.column == 8)
    #expect(error?.message == "can only concatenate str (not \"int\") to str")
    #expect(renderError("{{ undefined_thing.attr }}")?.message == "'undefined_thing' is undefined")
}

@Test func hostileTemplatesFailInsteadOfHanging() {
    // Nested loops that would run for days.
    let loops = "{% for a in range(100000) %}{% for b in range(100000) %}{{ b }}{% endfor %}{% endfor %}"
    #expect(renderError(loops)?.message.contains("steps") ?? false)
}

@Test func hostileRecursionAndOutputFail() {
    // Unbounded recursion.
    #expect(
        renderError("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")?.message.contains("nested too deeply") ?? false)
    // Output that doubles until memory runs out.
    let doubling =
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}"
    #expect(renderError(doubling)?.message.contains("too large") ?? false)
    #expect(renderError("{{ 'x' * 1000000000000 }}") != nil)
    #expect(renderError("{{ range(10000000) | length }}") != nil)
}

@Test func hostileNestingFails() {
    // Values nested deeper than printing can follow.
    let nesting =
        "{% set ns = namespace(v=[]) %}{% for i in range(5000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v }}"
    #expect(renderError(nesting)?.message.contains("nested too deeply") ?? false)
    // Parser nesting.
    #expect(
        parseError("{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}")
            != nil)
    #expect(parseError("{{ " + String(repeating: "not ", count: 5000) + "x }}") != nil)
    #expect(
        parseError(String(repeating: "{% if x %}", count: 1000) + String(repeating: "{% endif %}", count: 1000)) != nil)
}

@Test func sandboxRefusesMutation() {
    #expect(
        renderError("{% set l = [1] %}{{ l.append(2) }}")?.message
            == "access to attribute 'append' of 'list' object is unsafe.")
    #expect(renderError("{{ {}.pop('a') }}") != nil)
}

@Test func namespaceAndScopes() throws {
    #expect(try render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}") == "1")
    #expect(
        try render("{% set ns = namespace(x=1) %}{% for i in [1] %}{% set ns.x = 2 %}{% endfor %}{{ ns.x }}") == "2")
    #expect(try render("{% if true %}{% set y = 3 %}{% endif %}{{ y }}") == "3")
    #expect(renderError("{% set s = 'a' %}{% set s.x = 1 %}") != nil)
}
