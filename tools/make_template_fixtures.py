"""Renders chat-template fixtures with transformers' own `apply_chat_template`.

Each template below is rendered over many conversations (with and without a system message, multi-turn, unicode,
whitespace at the ends, content parts, tools and tool calls, add_generation_prompt on and off, and inputs that must
fail). Sources, inputs and the exact outputs (or the error message) go to Tests/Fixtures/templates/<name>.json,
which the Swift tests compare byte for byte.

Run from the repository root with the tools venv (made by tools/setup_venv.sh):
    tools/.venv/bin/python tools/make_template_fixtures.py
"""

import venv_guard  # noqa: F401  (re-runs this script inside tools/.venv)
import json
import pathlib

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "templates"
BOS = "<|begin_of_text|>"
EOS = "<|eot_id|>"

# The chat template of microsoft/bitnet-b1.58-2B-4T on Hugging Face.
BITNET_HF = (
    "{% for message in messages %}{{ message['role'] | capitalize + ': ' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"
)

# The template bitnet.cpp's converter writes into GGUF files (the one with "BITNETAssistant").
BITNET_CPP = (
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
)

# BitNet's training format; must equal ChatTemplate.bitNetTrainingFormat in the Swift sources.
BITNET_TRAINING = """{{- bos_token -}}
{%- for message in messages -%}
    {%- if message['content'] is string -%}
        {%- set content = message['content'] -%}
    {%- elif message['content'] is iterable and message['content'] is not mapping -%}
        {%- set parts = namespace(text='') -%}
        {%- for part in message['content'] if part is mapping and part['type'] == 'text' -%}
            {%- set parts.text = parts.text + part['text'] -%}
        {%- endfor -%}
        {%- set content = parts.text -%}
    {%- else -%}
        {%- set content = '' -%}
    {%- endif -%}
    {{- message['role'] | capitalize + ': ' + content | trim + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- 'Assistant: ' -}}
{%- endif -%}"""

LLAMA3 = """{{- bos_token }}
{%- if not date_string is defined %}
    {%- set date_string = strftime_now("%d %b %Y") %}
{%- endif %}
{#- The system message is taken out of the list and rendered in the header. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] | trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
<|start_header_id|>system<|end_header_id|>

{{ "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none %}
    {{- "You have access to the following functions. Respond with a JSON object {\\"name\\": name, \\"parameters\\": args}.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- set ns = namespace(last_role='system', tool_turns=0) %}
{%- for message in messages %}
    {%- if message.role not in ['user', 'assistant', 'tool', 'ipython'] %}
        {{- raise_exception("Unexpected role '" ~ message.role ~ "' at position " ~ loop.index0) }}
    {%- endif %}
    {%- if message.role == 'assistant' and message.tool_calls is defined and message.tool_calls %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
        {%- for tool_call in message.tool_calls %}
            {%- set call = tool_call.function if tool_call.function is defined else tool_call %}
            {{- '{"name": "' + call.name + '", "parameters": ' }}
            {{- call.arguments | tojson }}
            {{- "}" }}
            {%- if not loop.last %}{{ "; " }}{% endif %}
        {%- endfor %}
        {{- "<|eot_id|>" }}
    {%- elif message.role in ['tool', 'ipython'] %}
        {%- set ns.tool_turns = ns.tool_turns + 1 %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable and message.content is not string %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- else %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
    {%- endif %}
    {%- set ns.last_role = message.role %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

CHATML = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object within <tool_call></tool_call> XML tags.<|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- elif message.content is none %}
        {%- set content = '' %}
    {%- else %}
        {%- set content = message.content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('\\n') %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

MISTRAL = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""

# Not a real model's template: exercises the rest of the supported Jinja subset over the same conversations.
FEATURES = """{# Kitchen sink: every construct the renderer supports. #}
{%- macro render_part(part, prefix='* ') -%}
{{ prefix }}{{ part.type | upper }}{% if part.text is defined %}={{ part.text | trim }}{% endif %}
{%- endmacro -%}
{%- set roles = messages | map(attribute='role') | list %}
roles: {{ roles | join(', ') }} ({{ roles | length }}, unique {{ roles | unique | list | length }})
sorted: {{ roles | sort | join(' ') }} / {{ roles | sort(reverse=true) | first }} / {{ roles | last | title }}
{% for message in messages %}
  {%+ if loop.first %}[first]{% endif %} {{ loop.index }}/{{ loop.length }} rev{{ loop.revindex }}-{{ loop.revindex0 }} {{ loop.cycle('odd', 'even') }}
  {%- if message.content is string %}
    {%- set words = message.content.split() %}
 words={{ words | length }} first={{ words[0] if words else 'none' }} last={{ (words | last) if words else 'none' }}
 upper={{ message.content.upper() }} stripped=[{{ message.content.strip() }}] rev=[{{ message.content[::-1] }}] head=[{{ message.content[:5] }}] tail=[{{ message.content[-3:] }}]
 title={{ message.content.title() }} cap={{ message.content | capitalize }} len={{ message.content | length }}
 starts={{ message.content.startswith(('Hi', 'What')) }} has_q={{ '?' in message.content }} repl={{ message.content.replace(' ', '_') }}
  {%- elif message.content is none %}
 none content, json={{ message.content | tojson }}, str={{ message.content | string }}
  {%- else %}
    {%- for part in message.content %}
 {{ render_part(part) }}{{ render_part(part, prefix='> ') if loop.last }}
    {%- else %}
 (no parts)
    {%- endfor %}
  {%- endif %}
  {%- if message.tool_calls is defined %}
    {%- for call in message.tool_calls %}
 call {{ call.function.name }}: {% for key, value in call.function.arguments.items() %}{{ key }}={{ value }}{{ ', ' if not loop.last }}{% endfor %}
 sorted args: {{ call.function.arguments | dictsort | map('first') | join('|') }}
 keys: {{ call.function.arguments.keys() | list }} get: {{ call.function.arguments.get('unit', 'n/a') }} {{ call.function.arguments.get('missing', 'n/a') }}
    {%- endfor %}
  {%- endif %}
{% endfor %}
{%- set ns = namespace(count=0, text='') %}
{%- for message in messages if message.role != 'system' %}
  {%- if message.role == 'tool' %}{% continue %}{% endif %}
  {%- set ns.count = ns.count + 1 %}
  {%- set ns.text = ns.text ~ message.role[0] %}
  {%- if ns.count >= 3 %}{% break %}{% endif %}
{%- endfor %}
count={{ ns.count }} text={{ ns.text }}
{% set block %}roles={{ roles }}{% endset -%}
block: {{ block | replace('roles', 'R') }}
math: {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 8 }} {{ 1.5 * 2 }} {{ 10 - 2.5 }} {{ (1 + 2) * 3 }}
values: {{ none }} {{ true }} {{ [1, 'two', 3.0, none, false] }} {{ {'a': 1, 'b': [2, 3]} }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-7 }}
strings: {{ 'a' ~ 1 ~ none }} {{ "it's" }} {{ ["it's", 'say "hi"', 'tab\\there'] }} {{ 'x' * 3 }}
filters: {{ undefined_thing | default('fallback') }} {{ none | default('kept') }} {{ '' | default('empty', true) }} {{ '42' | int + 1 }} {{ '2.5' | float }} {{ 3.7 | int }} {{ 2.5 | round }} {{ -3 | abs }}
tests: {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ undefined_thing is defined }} {{ messages is iterable }} {{ messages[0] is mapping }} {{ 'x' is string }} {{ 1 is number }} {{ none is none }} {{ true is boolean }} {{ 1.5 is float }} {{ 1 is integer }}
compare: {{ 1 < 2 < 3 }} {{ 'a' < 'b' }} {{ [1, 2] == [1, 2] }} {{ 1 == 1.0 }} {{ 'a' not in 'abc' }} {{ 2 in [1, 2] }} {{ 'role' in messages[0] }}
format: {{ '{} and {}'.format('x', 'y') }} {{ '{name}!'.format(name='hi') }} {{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a-b-c'.rsplit('-', 1) }}
json: {{ {'k': 'é', 'n': [1, 2.5, true, none]} | tojson }} {{ [] | tojson }} {{ {'b': 1, 'a': {}} | tojson(sort_keys=true) }}
indent: {{ 'line1\\nline2\\n\\nline4' | indent(2) }} | {{ 'x\\ny' | indent(first=true) }}
{% raw %}{{ not rendered }}{% endraw %}
  {%- if add_generation_prompt %}
GEN {{ bos_token }}{{ eos_token }}
  {%- endif %}
range: {% for i in range(3) %}{{ i }}{% endfor %} {% for i in range(10, 0, -3) %}{{ i }},{% endfor %} {{ range(2, 5) | list }} {{ range(5) | sum }}
selects: {{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} {{ messages | selectattr('role', 'equalto', 'user') | list | length }} {{ messages | rejectattr('role', 'in', ['user', 'system']) | map(attribute='role') | join(',') }}
items: {% for k, v in {'x': 1, 'y': 2} | items %}{{ k }}{{ v }}{% endfor %} {{ {'x': 1}.items() | list | length }} {{ {'x': 1}.values() | list }}
     trailing spaces stay    
{#- comment eats the newline before it #}
end
"""

# Small templates, each rendered over the "multi_turn" conversation with add_generation_prompt on: one feature or
# whitespace rule at a time. Some must fail; their error is recorded instead.
SNIPPETS = [
    "a\n  {% if true %}\n  b\n  {% endif %}\nc\n",
    "a  {% if true %}b{% endif %}  c",
    "  {%+ if true %}x{% endif %}",
    "{% if true +%}\nx{% endif %}",
    "{% if true %}\n\nx{% endif %}",
    "line\n    {# comment #}\nnext",
    "a {#- comment -#} b",
    "  {{ 'x' }}  \n  {{- 'y' -}}  \nz",
    "{% for m in messages %}\n  {{ m.role }}\n{% endfor %}",
    "{%- for m in messages -%}\n  {{ m.role }}\n{%- endfor -%}",
    "x\r\ny\rz{% if true %}\r\n!{% endif %}",
    "trailing newline kept once\n\n",
    "{% raw %}  {{ x }} {% if %}{% endraw %}|{%- raw -%}  a  {%- endraw -%}|",
    "{{ messages[0].content }}|{{ messages[-1]['content'] }}|{{ messages[99] }}|{{ messages[1].nope }}|",
    "{{ messages[0]['content'][3:] }}|{{ 'abcdef'[1:5:2] }}|{{ 'abcdef'[::-2] }}|{{ [1,2,3][-2:] }}|{{ 'abc'[5:] }}|",
    "{{ (messages | first).role }} {{ (messages | last).content }} {{ messages | length }} {{ messages | count }}",
    "{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}|{% for x in [1] if x > 5 %}{{ x }}{% else %}filtered{% endfor %}",
    "{% for x in 'abc' %}{{ loop.index0 }}{{ x }}{{ loop.previtem | default('-') }}{{ loop.nextitem | default('-') }} {% endfor %}",
    "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}|{% set x, y = 'pq' %}{{ y }}{{ x }}",
    "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}",
    "{% set ns = namespace(total=0, seen=[]) %}{% for i in [1, 2, 3] %}{% set ns.total = ns.total + i %}{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.total }} {{ ns.seen }}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }} {{ greet() }}",
    "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(4) }}",
    "{{ 'Hello' if add_generation_prompt else 'Bye' }} {{ 'x' if false }}|{{ 1 if none else 2 if 0 else 3 }}",
    "{{ not true }} {{ not none }} {{ true and 'yes' }} {{ '' or 'default' }} {{ 0 or [] }} {{ none and 1 }}",
    "{{ 1 + 2 * 3 - 4 / 2 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 10 // 3 * 3 + 10 % 3 }} {{ 'a' + 'b' ~ 'c' }} {{ 1 ~ 2 ~ 3 }}",
    "{{ 1 / 4 }} {{ 2 / 1 }} {{ 1e3 }} {{ 123456789.123 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ -0.0 }} {{ 3.0 * 1.1 }}",
    "{{ [1, 2] + [3] }} {{ [0] * 3 }} {{ 'ab' * 2 }} {{ 2 * 'c' }} {{ true + true }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}",
    "{{ 'A' < 'a' }} {{ [1, 2] < [1, 3] }} {{ 2 > 1.5 }} {{ 1 != 1 }} {{ none == none }} {{ 'x' == none }} {{ undefined_var == undefined_other }}",
    "{{ 'ell' in 'hello' }} {{ 'role' in messages[0] }} {{ 'nope' in messages[0] }} {{ 3 not in [1, 2] }} {{ 'x' in undefined_var }}",
    "{{ x is defined }} {{ x is undefined }} {{ messages is defined }} {{ tools is none }} {{ tools is defined }} {{ documents is none }}",
    "{{ 'a' is string }} {{ 1 is string }} {{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ x is iterable }}",
    "{{ 1 is number }} {{ true is number }} {{ 1.0 is integer }} {{ true is integer }} {{ 1 is sameas 1 }} {{ none is sameas none }} {{ 'a' is in 'abc' }} {{ 2 is eq 2 }}",
    "{{ 'AbC' is upper }} {{ 'ABC' is upper }} {{ 'abc' is lower }} {{ 3 is odd }} {{ 3 is not even }} {{ 10 is divisibleby(5) }} {{ 'f' is callable }} {{ range is callable }}",
    "{{ '  x  ' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ ' a '.strip() }}|{{ ' a '.lstrip() }}|{{ ' a '.rstrip() }}|{{ 'xyax'.strip('xy') }}|",
    "{{ 'hello world' | capitalize }} {{ 'hELLO' | capitalize }} {{ 'hello wORLD-foo (bar)' | title }} {{ 'hello wORLD-foo' .title() }} {{ 'ß' | upper }} {{ 'İ' | lower | length }}",
    "{{ 'a b  c'.split(' ') }} {{ 'a b  c'.split() }} {{ 'a,b,c'.split(',', 1) }} {{ ''.split() }} {{ 'a\\nb\\r\\nc'.splitlines() }}",
    "{{ 'abcabc'.replace('b', 'X') }} {{ 'abcabc'.replace('b', 'X', 1) }} {{ 'abc' | replace('', '-') }} {{ 'aaa' | replace('a', 'b', 2) }}",
    "{{ 'abc'.startswith('a') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'abc'.find('c') }} {{ 'abc'.find('z') }} {{ 'a-b'.join(['1', '2']) }} {{ 'aXa'.count('a') }}",
    "{{ '123'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ ''.isdigit() }} {{ 'Ab'.islower() }} {{ 'x'.removeprefix('x') }}{{ 'file.py'.removesuffix('.py') }}",
    "{{ '{0}-{1}-{0}'.format('a', 'b') }} {{ '{{}} {}'.format(1) }} {{ '{x}'.format(x=none) }}",
    "{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} {{ [3, 1, 2] | sort(reverse=true) }} {{ [1, 5, 3] | max }} {{ ['b', 'a'] | min }}",
    "{{ messages | sort(attribute='role') | map(attribute='role') | join(',') }} {{ ['a', 'A', 'b'] | unique | list }} {{ [1, 2, 1] | unique | list }}",
    "{{ [1, 2, 3] | sum }} {{ messages | map(attribute='content') | map('length') | sum }} {{ [[1], [2]] | sum(start=[]) }} {{ ['a', 'b'] | map('upper') | join }}",
    "{{ {'b': 1, 'a': 2} | dictsort | map('first') | join }} {{ {'b': 1, 'a': 2, 'c': 0} | dictsort(by='value', reverse=true) | map('last') | list }} {{ {'a': 1} | items | list | length }}",
    "{{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }} {{ 'abc' | first }} {{ [] | first }} {{ 'abc' | list }} {{ {'k': 1} | list }} {{ 'abc' | reverse }} {{ [1, 2] | reverse | list }}",
    "{{ '5' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ '3.9' | int }} {{ 4.9 | int }} {{ '1.5' | float }} {{ 'x' | float }} {{ 3 | float }} {{ 2.567 | round(2) }} {{ 2.5 | round(method='ceil') }} {{ 3 | round }}",
    "{{ x | default('d') }} {{ x | d('d2') }} {{ none | default('n') }} {{ false | default('f', true) }} {{ x | length }} {{ x | string }}|{{ x | trim }}|{{ x | list }}",
    "{{ messages[0] | tojson }}\n{{ messages[0] | tojson(indent=2) }}\n{{ {'a': [1, {'b': none}], 'c': 'é\"\\n'} | tojson(indent=4, sort_keys=true) }}",
    "{{ 'é' | tojson }} {{ 'é' | tojson(true) }} {{ '😀\\u0001' | tojson(ensure_ascii=true) }} {{ [1.0, 2.5e-8, 1e100, -0.0] | tojson }} {{ {'a': 1} | tojson(separators=[',', ':']) }}",
    "{{ messages[0] }} {{ messages[0].items() | list | length }} {{ messages[0].keys() | list }} {{ messages[0].values() | list | length }} {{ messages[0].get('role') }} {{ messages[0].get('x') }} {{ messages[0].get('x', 'd') }}",
    "{{ {'items': 1}['items'] }} {{ {'content': 'c'}.content }}",
    "{% set d = {'k': 'v', 'n': 1} %}{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
    "{% set block %}\n  inner {{ 1 + 1 }}\n{% endset %}[{{ block }}]",
    "{{ 'adjacent' 'strings' }} {{ \"dq\" }} {{ 'esc\\'aped' }} {{ 'tab\\tnew\\nline' | tojson }} {{ '\\x41\\u00e9' }}",
    "{{ ['it\\'s', \"say \\\"x\\\"\", 'both \\' \"', 'uni é', 'ctl \\x07', 'nl \\n'] }}",
    "{{ 1_000 }} {{ 1.5e3 }} {{ True }} {{ False }} {{ None }} {{ (1, 2) | list }} {{ [] }} {{ {} }} {{ [[]] }}",
    "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(' / ') }} {{ messages|rejectattr('role', 'eq', 'user')|list|length }} {{ [0, 1, 2]|select|list }}",
    "{{ 'x\\ny' | indent }}|{{ 'x\\ny' | indent(2, true) }}|{{ 'x\\n\\ny\\n' | indent(1, blank=true) }}|{{ 'a' | indent('>') }}",
    "{{ '<b>&\"\\'' | e }} {{ 'x' | safe }} {{ 'a b  c' | wordcount }} {{ -5 | abs }} {{ range(3) | list }} {{ range(1, 10, 4) | list }}",
    "{{ dict(a=1, b='x') }} {{ namespace(a=1).a }} {{ namespace({'k': 2}).k }}",
    "{% for m in messages %}{{ loop.cycle('a', 'b', 'c') }}{{ loop.first }}{{ loop.last }}{{ loop.depth }}{% endfor %}",
    "{% generation %}gen {{ 1 }}{% endgeneration %}",
    "{% if messages %}{% elif x %}e{% else %}z{% endif %}[{% if false %}a{% elif 0 %}b{% elif 'y' %}c{% endif %}]",
    "  {% set x = 'no output' %}\n  {%- if x %}\nkept\n  {% endif %}\n",
    "{{ raise_exception('Custom failure: ' + messages[0].role) }}",
    "{{ undefined_var.attribute }}",
    "{{ undefined_var['key'] }}",
    "{{ undefined_var + 1 }}",
    "{{ 'a' + 1 }}",
    "{{ 1 + 'a' }}",
    "{{ 1 / 0 }}",
    "{{ 5 // 0 }}",
    "{{ [1].append(2) }}",
    "{{ messages[0].update({'a': 1}) }}",
    "{{ none | length }}",
    "{% for x in none %}{% endfor %}",
    "{{ 1 < 'a' }}",
    "{{ 3 | items | list }}",
    "{{ none.attr }}|{{ 1.attr }}|{{ 'abc'.nothing }}|",
    "{{ range(1000000) | length }}",
    "{{ undefined_fn() }}",
    "{{ messages(1) }}",
    "{{ 'x' | tojson }}{{ x | tojson }}",
    "{% set a, b = [1, 2, 3] %}",
]


TEMPLATES = {
    "bitnet_hf": BITNET_HF,
    "bitnet_training": BITNET_TRAINING,
    "bitnet_cpp_gguf": BITNET_CPP,
    "llama3_tools": LLAMA3,
    "chatml_tools": CHATML,
    "mistral": MISTRAL,
    "features": FEATURES,
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather — in °C or °F",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City, e.g. \"Paris\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
            },
            "required": ["location"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {"name": "search", "description": "Search the web", "parameters": {"type": "object", "properties": {}}},
}

CALL_ARGUMENTS = {"location": "Zürich", "unit": "celsius", "days": 3, "threshold": 0.5, "exact": True, "note": None}

CONVERSATIONS = {
    "user_only": [{"role": "user", "content": "Hi there, who are you?"}],
    "system_user": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "multi_turn": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "no_system_multi_turn": [
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": "Two"},
        {"role": "user", "content": "Three"},
        {"role": "assistant", "content": "Four"},
    ],
    "unicode": [
        {"role": "system", "content": "Réponds en français. 日本語もOK 🎉"},
        {"role": "user", "content": "Ça va? \"quoted\" and 'single' — emoji 👩‍💻 and tab\there"},
    ],
    "whitespace": [
        {"role": "system", "content": "\n  padded system  \n"},
        {"role": "user", "content": "   lots of space\t\n\n"},
        {"role": "assistant", "content": "\nanswer with newline\n"},
        {"role": "user", "content": "  "},
    ],
    "content_parts": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this image."},
                {"type": "image", "url": "https://example.com/cat.png"},
                {"type": "text", "text": " Be concise. "},
            ],
        }
    ],
    "tool_flow": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "What's the weather in Zürich?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": CALL_ARGUMENTS}},
                {"type": "function", "function": {"name": "search", "arguments": {"query": "Zürich weather"}}},
            ],
        },
        {"role": "tool", "content": "{\"temperature\": 21.5, \"unit\": \"celsius\"}"},
        {"role": "tool", "content": "Sunny"},
        {"role": "assistant", "content": "It is 21.5 °C and sunny."},
    ],
    "double_user": [
        {"role": "user", "content": "First"},
        {"role": "user", "content": "Second"},
    ],
    "unknown_role": [
        {"role": "user", "content": "Hi"},
        {"role": "narrator", "content": "Meanwhile..."},
    ],
}


def make_tokenizer():
    vocab = {"<unk>": 0, BOS: 1, EOS: 2}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, unk_token="<unk>")


def render(tokenizer, source, messages, tools, add_generation_prompt, extra):
    try:
        text = tokenizer.apply_chat_template(
            messages,
            tools=tools,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
            chat_template=source,
            **extra,
        )
        return {"expected": text}
    except Exception as error:  # the Swift side must fail too; the message is kept for raise_exception checks
        return {"error": str(error), "error_type": type(error).__name__}


def main():
    tokenizer = make_tokenizer()
    OUT.mkdir(parents=True, exist_ok=True)
    tool_list = [WEATHER_TOOL, SEARCH_TOOL]
    total = 0
    for name, source in TEMPLATES.items():
        cases = []
        for conversation_name, messages in CONVERSATIONS.items():
            for with_tools in (False, True):
                if with_tools and name not in ("llama3_tools", "chatml_tools", "features"):
                    continue
                for add_generation_prompt in (False, True):
                    extra = {"date_string": "26 Jul 2024"} if name == "llama3_tools" else {}
                    case = {
                        "conversation": conversation_name,
                        "tools": with_tools,
                        "add_generation_prompt": add_generation_prompt,
                        "extra_context": extra,
                    }
                    tools = tool_list if with_tools else None
                    case.update(render(tokenizer, source, messages, tools, add_generation_prompt, extra))
                    cases.append(case)
        document = {
            "name": name,
            "source": source,
            "bos_token": BOS,
            "eos_token": EOS,
            "tools": tool_list,
            "conversations": CONVERSATIONS,
            "cases": cases,
        }
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        errors = sum(1 for case in cases if "error" in case)
        print(f"{path.name}: {len(cases)} cases, {errors} expected errors")
        total += len(cases)
    snippet_cases = []
    for source in SNIPPETS:
        case = {"source": source}
        case.update(render(tokenizer, source, CONVERSATIONS["multi_turn"], None, True, {}))
        snippet_cases.append(case)
    document = {"bos_token": BOS, "eos_token": EOS, "messages": CONVERSATIONS["multi_turn"], "cases": snippet_cases}
    path = OUT / "snippets.json"
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    errors = sum(1 for case in snippet_cases if "error" in case)
    print(f"{path.name}: {len(snippet_cases)} cases, {errors} expected errors")
    total += len(snippet_cases)
    print(f"total: {total} renders")


if __name__ == "__main__":
    main()
