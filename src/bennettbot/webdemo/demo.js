// bennettbot demo page: renders the emulated workspace and posts as a person.
// Plain JS, no libraries: the server sends the workspace as JSON, and an
// event stream says when to fetch it again.
"use strict";

const EMOJI = { white_check_mark: "✅", x: "❌", sos: "🆘", eyes: "👀" };
const state = { channel: null, threadTs: null, data: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// Slack's message text: &lt; &gt; &amp; escapes, <@U1> mentions, <url|label>
// links, *bold*, _italic_, `code` and ```blocks```. Built as DOM nodes, so
// nothing in a message is ever taken as HTML.
function unescape(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function inline(text, users) {
  const nodes = [];
  const pattern = /<([^<>]+)>|`([^`\n]+)`|\*([^*\n]+)\*|_([^_\n]+)_/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) nodes.push(unescape(text.slice(last, match.index)));
    if (match[1] !== undefined) nodes.push(special(match[1], users));
    else if (match[2] !== undefined) nodes.push(el("code", { text: unescape(match[2]) }));
    else if (match[3] !== undefined) nodes.push(el("strong", { text: unescape(match[3]) }));
    else nodes.push(el("em", { text: unescape(match[4]) }));
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(unescape(text.slice(last)));
  return nodes;
}

function special(inside, users) {
  const [target, label] = inside.split("|", 2);
  if (target.startsWith("@")) {
    const id = target.slice(1);
    return el("span", { class: "mention", text: "@" + (label || users[id] || id) });
  }
  if (target.startsWith("#")) return el("span", { class: "mention", text: "#" + (label || target.slice(1)) });
  if (target.startsWith("!")) return el("span", { class: "mention", text: "@" + target.slice(1).split("^")[0] });
  if (/^(https?|mailto):/.test(target)) {
    return el("a", { href: target, rel: "noopener noreferrer", target: "_blank", text: unescape(label || target) });
  }
  return "<" + unescape(inside) + ">";
}

function mrkdwn(text, users) {
  const box = el("div", { class: "text" });
  const parts = text.split("```");
  parts.forEach((part, index) => {
    if (index % 2) box.append(el("pre", { text: unescape(part.replace(/^\n/, "")) }));
    else box.append(...inline(part, users));
  });
  return box;
}

function blockText(object, users) {
  if (!object) return el("span");
  return object.type === "plain_text" ? el("span", { text: object.text }) : mrkdwn(object.text || "", users);
}

function renderBlocks(blocks, message, channel, users) {
  const box = el("div", { class: "blocks" });
  for (const block of blocks) {
    if (block.type === "header") box.append(el("div", { class: "block-header", role: "heading", "aria-level": "3", text: block.text.text }));
    else if (block.type === "divider") box.append(el("hr", { class: "block-divider" }));
    else if (block.type === "context") {
      const line = el("div", { class: "block-context" });
      for (const element of block.elements || []) line.append(element.type === "image" ? (element.alt_text || "") : blockText(element, users));
      box.append(line);
    } else if (block.type === "section") {
      const section = el("div", { class: "block" });
      if (block.text) section.append(blockText(block.text, users));
      for (const field of block.fields || []) section.append(blockText(field, users));
      box.append(section);
    } else if (block.type === "actions") {
      const row = el("div", { class: "actions", role: "group", "aria-label": "Actions" });
      for (const element of block.elements || []) {
        if (element.type !== "button") continue;
        const button = el("button", { type: "button", class: element.style || "", text: element.text.text });
        button.addEventListener("click", () => press(channel, message.ts, element.action_id));
        row.append(button);
      }
      box.append(row);
    } else if (block.type === "rich_text") {
      box.append(mrkdwn(message.text, users));
    }
  }
  return box;
}

function renderMessage(message, channel, users, inThread) {
  const item = el("article", { class: "message", "aria-label": "From @" + message.user });
  const head = el("div", {}, [el("span", { class: "who", text: "@" + message.user })]);
  if (message.is_bot) head.append(el("span", { class: "bot", text: "app" }));
  if (message.edited) head.append(" ", el("span", { class: "edited", text: "(edited)" }));
  item.append(head);
  if (message.blocks && message.blocks.length) item.append(renderBlocks(message.blocks, message, channel, users));
  else item.append(mrkdwn(message.text || "", users));
  for (const fileId of message.files || []) {
    item.append(el("div", { class: "file" }, ["📎 ", el("a", { href: "/files/" + fileId, target: "_blank", text: "Open the uploaded file " + fileId })]));
  }
  if (message.reactions.length) {
    const row = el("div", { class: "reactions", "aria-label": "Reactions" });
    for (const reaction of message.reactions) {
      const label = reaction.name.replace(/_/g, " ") + ", " + reaction.count;
      row.append(el("span", { class: "reaction", title: reaction.name, "aria-label": label, text: (EMOJI[reaction.name] || ":" + reaction.name + ":") + " " + reaction.count }));
    }
    item.append(row);
  }
  if (!inThread) {
    if (message.replies) {
      const thread = el("div", { class: "thread", role: "group", "aria-label": "Thread" });
      for (const reply of message.replies) thread.append(renderMessage(reply, channel, users, true));
      item.append(thread);
    }
    const reply = el("button", { type: "button", class: "reply", text: "Reply in thread" });
    reply.addEventListener("click", () => { state.threadTs = message.ts; $("replying").hidden = false; $("composer-text").focus(); });
    item.append(reply);
  }
  return item;
}

function render() {
  const data = state.data;
  if (!data) return;
  if (!state.channel || !data.channels.some((c) => c.id === state.channel)) {
    state.channel = (data.channels.find((c) => c.name === "#general") || data.channels[0]).id;
  }
  const list = $("channels");
  list.replaceChildren();
  for (const channel of data.channels) {
    const button = el("button", { type: "button", "aria-current": String(channel.id === state.channel), text: channel.name });
    button.addEventListener("click", () => { state.channel = channel.id; state.threadTs = null; $("replying").hidden = true; render(); $("composer-text").focus(); });
    list.append(el("li", {}, [button]));
  }
  const channel = data.channels.find((c) => c.id === state.channel);
  $("channel-title").textContent = channel.name;
  const pane = $("messages");
  const atBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 40;
  pane.replaceChildren();
  for (const message of channel.messages) pane.append(renderMessage(message, channel.id, data.users, false));
  for (const note of channel.ephemerals) {
    pane.append(el("div", { class: "ephemeral", role: "note" }, ["Only you can see this: ", ...inline(note.text, data.users)]));
  }
  if (atBottom) pane.scrollTop = pane.scrollHeight;
}

async function refresh() {
  const response = await fetch("/api/state?as=" + encodeURIComponent($("who").value));
  if (response.ok) { state.data = await response.json(); render(); }
}

async function post(path, body) {
  $("error").textContent = "";
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ as: $("who").value, ...body }) });
  if (!response.ok) $("error").textContent = await response.text();
  return response.ok;
}

function press(channel, ts, actionId) {
  return post("/api/press", { channel, ts, action_id: actionId });
}

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("composer-text");
  const text = input.value.trim();
  if (!text) return;
  if (await post("/api/say", { channel: state.channel, text, thread_ts: state.threadTs })) input.value = "";
});
$("cancel-reply").addEventListener("click", () => { state.threadTs = null; $("replying").hidden = true; $("composer-text").focus(); });
$("who").addEventListener("change", refresh);

const events = new EventSource("/api/events");
events.onmessage = refresh;
refresh();
