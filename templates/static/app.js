/* Jarvis web UI: progressive enhancement only. Every page works without
   this file; it adds live countdowns, local times, a live queue, live
   output on an action page and the model's text as it is written on a
   conversation's page.

   Rules (the Content-Security-Policy and the reviewer hold us to them):
   - untrusted text (commands, output, names) only ever goes through
     textContent / createTextNode, after inert();
   - the one innerHTML assignment puts an HTML fragment fetched from this
     origin (/queue/items), escaped by the server, into #queue-items;
   - a conversation page swaps in its own #conversation, fetched from this
     origin and parsed with DOMParser (which runs no script);
   - no eval, no inline handlers, no external resources. */
(function () {
  "use strict";

  // ---------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------

  /** The same mapping as the server's `inert` filter: control characters
   *  other than newline and tab, and invisible bidirectional controls,
   *  become visible placeholders. */
  function inert(s) {
    var out = "";
    for (var ch of String(s)) {
      var c = ch.codePointAt(0);
      if (c === 0x0a || c === 0x09) {
        out += ch;
      } else if (c < 0x20) {
        out += String.fromCodePoint(0x2400 + c);
      } else if (c === 0x7f) {
        out += "\u2421";
      } else if (
        (c >= 0x80 && c <= 0x9f) ||
        c === 0x061c ||
        c === 0x200b ||
        c === 0x200e ||
        c === 0x200f ||
        c === 0x2028 ||
        c === 0x2029 ||
        (c >= 0x202a && c <= 0x202e) ||
        c === 0x2060 ||
        (c >= 0x2066 && c <= 0x2069) ||
        c === 0xfeff
      ) {
        out += "\ufffd";
      } else {
        out += ch;
      }
    }
    return out;
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function parse(data) {
    try {
      var v = JSON.parse(data);
      return v && typeof v === "object" ? v : null;
    } catch (e) {
      return null;
    }
  }

  function nowUnix() {
    return Math.floor(Date.now() / 1000);
  }

  // ---------------------------------------------------------------------
  // Countdowns: <time class="countdown" data-expires="UNIX" data-now="UNIX">
  // The server's clock decides; data-now corrects for a phone whose clock
  // is off.
  // ---------------------------------------------------------------------

  /** Same words as the server's `span_text`. */
  function span(s) {
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + pad(s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + pad(Math.floor((s % 3600) / 60)) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }

  function tick() {
    var now = nowUnix();
    var els = document.querySelectorAll("time.countdown[data-expires]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var expires = parseInt(el.getAttribute("data-expires"), 10);
      if (isNaN(expires)) continue;
      if (el.jarvisSkew === undefined) {
        var serverNow = parseInt(el.getAttribute("data-now"), 10);
        el.jarvisSkew = isNaN(serverNow) ? 0 : serverNow - now;
      }
      var left = expires - (now + el.jarvisSkew);
      var text = left <= 0 ? "expired" : span(left) + " left";
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle("expired", left <= 0);
      el.classList.toggle("soon", left > 0 && left < 60);
      var item = el.closest("article.queue-item");
      if (item) item.classList.toggle("is-expired", left <= 0);
    }
  }

  // ---------------------------------------------------------------------
  // Local times: <time class="ts" datetime="RFC3339">… UTC</time> shows the
  // reader's local time; the UTC text stays in the title.
  // ---------------------------------------------------------------------

  function localTimes(root) {
    var els = root.querySelectorAll("time.ts[datetime]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (el.getAttribute("data-local") === "1") continue;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      el.title = el.textContent;
      el.textContent =
        d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
        " " + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
      el.setAttribute("data-local", "1");
    }
  }

  // ---------------------------------------------------------------------
  // Forms: no double submits; selects that filter submit on change.
  // ---------------------------------------------------------------------

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!(form instanceof HTMLFormElement) || (form.method || "").toLowerCase() !== "post") return;
    // Disable after the browser has taken the form's data.
    setTimeout(function () {
      var buttons = form.querySelectorAll("button");
      for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
    }, 0);
  });

  function autosubmit() {
    var selects = document.querySelectorAll("select[data-autosubmit]");
    for (var i = 0; i < selects.length; i++) {
      selects[i].addEventListener("change", function (e) {
        var form = e.target.form;
        if (!form) return;
        if (form.requestSubmit) form.requestSubmit();
        else form.submit();
      });
    }
  }

  // ---------------------------------------------------------------------
  // The queue: on any `action` event, fetch /queue/items and swap it in,
  // keeping typed reasons, open <details> and what is under the reader's
  // finger in place.
  // ---------------------------------------------------------------------

  function liveQueue(queue) {
    var timer = null;
    var busy = false;
    var again = false;
    var deferred = false;
    var broken = false;

    function schedule(delay) {
      clearTimeout(timer);
      timer = setTimeout(refresh, delay === undefined ? 350 : delay);
    }

    function busyHere() {
      // Typing a reason: swapping the list now would take the field away.
      var el = document.activeElement;
      return !!el && queue.contains(el) && (el.tagName === "INPUT" || el.tagName === "TEXTAREA");
    }

    function items() {
      return queue.querySelectorAll("article.queue-item[data-id]");
    }

    function find(id) {
      var list = items();
      for (var i = 0; i < list.length; i++) {
        if (list[i].getAttribute("data-id") === id) return list[i];
      }
      return null;
    }

    function remember() {
      var kept = {};
      var list = items();
      for (var i = 0; i < list.length; i++) {
        var article = list[i];
        var k = { reason: "", open: [] };
        var input = article.querySelector("input[name=reason]");
        if (input) k.reason = input.value;
        var details = article.querySelectorAll("details");
        for (var n = 0; n < details.length; n++) {
          if (details[n].open) k.open.push(n);
        }
        kept[article.getAttribute("data-id")] = k;
      }
      return kept;
    }

    function restore(kept) {
      var list = items();
      var first = Object.keys(kept).length === 0;
      for (var i = 0; i < list.length; i++) {
        var article = list[i];
        var k = kept[article.getAttribute("data-id")];
        if (!k) {
          if (!first) article.classList.add("is-new");
          continue;
        }
        var input = article.querySelector("input[name=reason]");
        if (input && k.reason) input.value = k.reason;
        var details = article.querySelectorAll("details");
        for (var n = 0; n < k.open.length; n++) {
          if (details[k.open[n]]) details[k.open[n]].open = true;
        }
      }
    }

    function updateCount() {
      var n = items().length;
      var count = document.getElementById("queue-count");
      if (count && count.getAttribute("data-more") !== "1") {
        count.textContent = n + " pending";
      }
      document.title = document.title.replace(/^\(\d+\) /, "");
      if (n > 0) document.title = "(" + n + ") " + document.title;
    }

    function swap(html) {
      // Anchor: the first item still on screen stays where it is, so a new
      // item arriving above cannot move a button under a finger.
      var anchorId = null;
      var anchorTop = 0;
      var list = items();
      for (var i = 0; i < list.length; i++) {
        var r = list[i].getBoundingClientRect();
        if (r.bottom > 0) {
          anchorId = list[i].getAttribute("data-id");
          anchorTop = r.top;
          break;
        }
      }
      var kept = remember();
      queue.innerHTML = html;
      restore(kept);
      if (anchorId !== null) {
        var same = find(anchorId);
        if (same) window.scrollBy(0, same.getBoundingClientRect().top - anchorTop);
      }
      localTimes(queue);
      tick();
      updateCount();
    }

    function showBroken(text) {
      var note = document.getElementById("queue-stale");
      if (!note) {
        note = document.createElement("p");
        note.id = "queue-stale";
        note.className = "flash error";
        queue.parentNode.insertBefore(note, queue);
      }
      note.textContent = text;
      broken = true;
    }

    function clearBroken() {
      var note = document.getElementById("queue-stale");
      if (note) note.parentNode.removeChild(note);
      broken = false;
    }

    function refresh() {
      if (busy) {
        again = true;
        return;
      }
      if (busyHere()) {
        // Someone is typing a reason or about to press a button: wait.
        deferred = true;
        return;
      }
      busy = true;
      fetch("/queue/items", {
        credentials: "same-origin",
        cache: "no-store",
        redirect: "manual",
        headers: { Accept: "text/html" }
      })
        .then(function (r) {
          if (r.type === "opaqueredirect" || r.status === 401 || r.status === 403) {
            throw new Error("signed out");
          }
          if (!r.ok) throw new Error("HTTP " + r.status);
          var type = r.headers.get("Content-Type") || "";
          if (type.indexOf("text/html") !== 0) throw new Error("not HTML");
          return r.text();
        })
        .then(function (html) {
          if (broken) clearBroken();
          swap(html);
        })
        .catch(function (err) {
          if (String(err && err.message) === "signed out") {
            showBroken("You have been signed out. Reload the page to sign in again.");
          } else {
            showBroken("Could not refresh the queue; it may be out of date. Reload to try again.");
          }
        })
        .then(function () {
          busy = false;
          if (again) {
            again = false;
            schedule();
          }
        });
    }

    queue.addEventListener("focusout", function (e) {
      if (!deferred) return;
      if (e.relatedTarget && queue.contains(e.relatedTarget)) return;
      deferred = false;
      schedule(150);
    });

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) schedule(0);
    });

    if (!("EventSource" in window)) return;
    var es = new EventSource("/events");
    var lost = false;
    es.addEventListener("action", function () {
      schedule();
    });
    es.addEventListener("error", function () {
      lost = true;
    });
    es.addEventListener("open", function () {
      // Events may have been missed while the connection was down.
      if (lost) {
        lost = false;
        schedule(0);
      }
    });
  }

  // ---------------------------------------------------------------------
  // An action page: live output while approved / running; reload when the
  // action reaches its next state.
  // ---------------------------------------------------------------------

  function liveAction(stateEl) {
    var id = stateEl.getAttribute("data-id");
    var current = stateEl.getAttribute("data-state");
    // Changes are followed from the audit log, so one the page already
    // shows can arrive after it loaded (a rollback's creation, after the
    // redirect to its page): those are skipped by their sequence number.
    var seen = parseInt(stateEl.getAttribute("data-seq"), 10) || 0;
    var live = current === "approved" || current === "running";
    var pending = current === "pending_approval";
    if (!id || !(live || pending) || !("EventSource" in window)) return;

    var es = new EventSource("/events");

    if (live) {
      es.addEventListener("output", function (e) {
        var d = parse(e.data);
        if (!d || d.id !== id || typeof d.text !== "string") return;
        var pre = document.getElementById(d.stream === "stderr" ? "stderr" : "stdout");
        if (!pre || pre.getAttribute("data-live") !== "1") return;
        var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
        pre.appendChild(document.createTextNode(inert(d.text)));
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      });
    }

    es.addEventListener("action", function (e) {
      var d = parse(e.data);
      if (!d || d.id !== id || typeof d.state !== "string") return;
      if (typeof d.seq === "number") {
        if (d.seq <= seen) return;
        seen = d.seq;
      }
      if (d.state === current) return;
      if (live && (d.state === "running" || d.state === "approved")) {
        // Still going: keep the output gathered so far, update the badge.
        current = d.state;
        stateEl.textContent = typeof d.label === "string" ? inert(d.label) : d.state;
        stateEl.setAttribute("data-state", d.state);
        return;
      }
      if (pending && typing()) {
        notice(
          "This action is now " + (typeof d.label === "string" ? d.label : d.state) +
            ". Reload the page to see it."
        );
        es.close();
        return;
      }
      es.close();
      window.location.reload();
    });

    function typing() {
      var inputs = document.querySelectorAll("input[name=reason]");
      for (var i = 0; i < inputs.length; i++) {
        if (inputs[i].value || inputs[i] === document.activeElement) return true;
      }
      return false;
    }

    function notice(text) {
      var p = document.createElement("p");
      p.className = "flash info";
      p.setAttribute("role", "status");
      p.textContent = inert(text);
      var main = document.getElementById("main");
      if (main) main.insertBefore(p, main.firstChild);
    }
  }

  // ---------------------------------------------------------------------
  // A conversation (/chat/ID): while it is active, fetch the page again on
  // any `action` event and every 3 s, and swap in its #conversation (the
  // server-escaped page of this origin, parsed by DOMParser), unless the
  // reader is typing a reason. Stops once it has ended.
  //
  // The model's text is not stored until the conversation ends, so it
  // comes live: `saying` events append pieces (inert, as text nodes) to
  // the turn being written, and `said` replaces them with the whole text,
  // which heals a piece missed. Each turn being written keeps its place
  // among the stored entries across swaps, and they all go once the
  // stored text is in the page.
  // ---------------------------------------------------------------------

  function liveConversation() {
    var stateEl = document.getElementById("conversation-state");
    if (!stateEl || stateEl.getAttribute("data-state") !== "active") return;
    if (!("fetch" in window) || !("DOMParser" in window)) return;
    var path = window.location.pathname;
    var first = document.getElementById("conversation");
    var id = first ? first.getAttribute("data-id") : null;
    var timer = null;
    var es = null;
    var busy = false;
    var done = false;
    var last = null;
    // Turns being written, in order: { el, who, text, anchor, next }, where
    // anchor is how many stored entries came before it.
    var turns = [];
    var current = null;

    function typing() {
      var box = document.getElementById("conversation");
      if (!box) return false;
      var inputs = box.querySelectorAll("input[name=reason]");
      for (var i = 0; i < inputs.length; i++) {
        if (inputs[i].value || inputs[i] === document.activeElement) return true;
      }
      // A button about to be pressed stays where it is.
      var el = document.activeElement;
      return !!el && el.tagName === "BUTTON" && box.contains(el);
    }

    /** The fetched #conversation without what changes every second (the
     *  countdowns' text, which tick() keeps up to date anyway). */
    function stable(node) {
      var copy = node.cloneNode(true);
      var times = copy.querySelectorAll("time.countdown");
      for (var i = 0; i < times.length; i++) times[i].textContent = "";
      return copy;
    }

    /** The stored entries of a #conversation, in order: what the server
     *  drew, without the turns being written and the end. */
    function entries(box) {
      var out = [];
      for (var i = 0; i < box.children.length; i++) {
        var c = box.children[i];
        if (c.classList.contains("chat-live") || c.id === "conversation-end" || c.id === "reply-form") {
          continue;
        }
        out.push(c);
      }
      return out;
    }

    function place(box, turn) {
      var before = entries(box)[turn.anchor] || document.getElementById("conversation-end");
      if (before && before.parentNode === box) box.insertBefore(turn.el, before);
      else box.appendChild(turn.el);
    }

    /** Puts the turns being written back into a swapped-in #conversation,
     *  or lets them go once the stored text is there (the model's words
     *  after where the first one was written, or the conversation over). */
    function keepTurns(box) {
      if (turns.length === 0) return;
      var list = entries(box);
      var stored = false;
      for (var i = turns[0].anchor; i < list.length; i++) {
        if (list[i].classList.contains("chat-assistant")) stored = true;
      }
      var now = document.getElementById("conversation-state");
      if (stored || !now || now.getAttribute("data-state") !== "active") {
        turns = [];
        current = null;
        return;
      }
      for (var n = 0; n < turns.length; n++) place(box, turns[n]);
    }

    function atBottom() {
      return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 40;
    }

    function startTurn() {
      var box = document.getElementById("conversation");
      if (!box) return null;
      var el = document.createElement("div");
      el.className = "chat-msg chat-assistant chat-live is-writing";
      var who = document.createElement("p");
      who.className = "chat-who";
      who.textContent = "Jarvis is writing…";
      var text = document.createElement("div");
      text.className = "chat-text";
      el.appendChild(who);
      el.appendChild(text);
      var turn = { el: el, who: who, text: text, anchor: entries(box).length, next: 0 };
      place(box, turn);
      turns.push(turn);
      return turn;
    }

    function saying(d) {
      var follow = atBottom();
      if (d.piece === 0 || !current) current = startTurn();
      if (!current) return;
      // A piece went missing (the stream fell behind or reconnected):
      // say so until the whole text comes.
      if (d.piece !== current.next) current.text.appendChild(document.createTextNode(" … "));
      current.text.appendChild(document.createTextNode(inert(d.text)));
      current.next = d.piece + 1;
      if (follow) window.scrollTo(0, document.documentElement.scrollHeight);
    }

    function said(d) {
      var turn = current || startTurn();
      current = null;
      if (!turn) return;
      turn.text.textContent = inert(d.text);
      turn.who.textContent = "Jarvis";
      turn.el.classList.remove("is-writing");
    }

    function stop() {
      done = true;
      clearInterval(timer);
      if (es) es.close();
      document.documentElement.removeAttribute("data-live-chat");
    }

    function swap(fresh) {
      var box = document.getElementById("conversation");
      if (!box) return;
      var open = [];
      var details = box.querySelectorAll("details");
      for (var i = 0; i < details.length; i++) {
        if (details[i].open) open.push(i);
      }
      var node = document.importNode(fresh, true);
      box.replaceWith(node);
      var again = node.querySelectorAll("details");
      for (var n = 0; n < open.length; n++) {
        if (again[open[n]]) again[open[n]].open = true;
      }
      keepTurns(node);
      localTimes(node);
      tick();
    }

    function refresh() {
      if (busy || done || document.hidden || typing()) return;
      busy = true;
      fetch(path, {
        credentials: "same-origin",
        cache: "no-store",
        redirect: "manual",
        headers: { Accept: "text/html" }
      })
        .then(function (r) {
          if (r.type === "opaqueredirect" || !r.ok) throw new Error("HTTP " + r.status);
          var type = r.headers.get("Content-Type") || "";
          if (type.indexOf("text/html") !== 0) throw new Error("not HTML");
          return r.text();
        })
        .then(function (text) {
          var doc = new DOMParser().parseFromString(text, "text/html");
          var fresh = doc.getElementById("conversation");
          if (!fresh || typing()) return;
          var key = stable(fresh);
          if (last && key.isEqualNode(last)) return;
          last = key;
          swap(fresh);
          var now = document.getElementById("conversation-state");
          if (!now || now.getAttribute("data-state") !== "active") stop();
        })
        .catch(function () {
          // Keep what is on screen; the next tick tries again.
        })
        .then(function () {
          busy = false;
        });
    }

    timer = setInterval(refresh, 3000);
    if ("EventSource" in window && id) {
      es = new EventSource("/events?conversation=" + encodeURIComponent(id));
      es.addEventListener("action", function () {
        setTimeout(refresh, 300);
      });
      es.addEventListener("saying", function (e) {
        var d = parse(e.data);
        if (done || !d || d.conversation !== id) return;
        if (typeof d.text !== "string" || typeof d.piece !== "number") return;
        saying(d);
      });
      es.addEventListener("said", function (e) {
        var d = parse(e.data);
        if (done || !d || d.conversation !== id || typeof d.text !== "string") return;
        said(d);
      });
      // Marks the page as hearing the conversation live (a style or a
      // test can tell text will come as it is written).
      es.addEventListener("open", function () {
        if (!done) document.documentElement.setAttribute("data-live-chat", "open");
      });
    }
  }

  // ---------------------------------------------------------------------

  function start() {
    localTimes(document);
    tick();
    setInterval(tick, 1000);
    autosubmit();
    var queue = document.getElementById("queue-items");
    if (queue) liveQueue(queue);
    var stateEl = document.getElementById("state");
    if (stateEl) liveAction(stateEl);
    liveConversation();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
