/**
 * The chat templates the tiny checkpoints ship, in the families' own formats, so that the code
 * that renders a real checkpoint's template is what the tests run. Written as the Jinja source
 * appears in the model repos' tokenizer_config.json (string literals with `\n` escapes).
 */
import type { ModelArch } from "./config.ts";

/** ChatML, as Qwen2 instruct models use it (without Qwen's default system prompt). */
export const CHATML_TEMPLATE = String.raw`{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`;

/** Meta-Llama-3-8B-Instruct's template, verbatim (it trims each message's content). */
export const LLAMA3_TEMPLATE = String.raw`{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`;

/** Mistral-7B-Instruct-v0.1's template, verbatim: user/assistant turns only, alternating. */
export const MISTRAL_TEMPLATE = String.raw`{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}`;

export const CHAT_TEMPLATES: Readonly<Record<ModelArch, string>> = {
  llama: LLAMA3_TEMPLATE,
  qwen2: CHATML_TEMPLATE,
  mistral: MISTRAL_TEMPLATE,
};
