// archdsl for VS Code: the .arch language (its grammar and configuration are declared in
// package.json) and a client that starts `archdsl lsp` over stdio for every .arch file.
// Plain JavaScript, loaded as it is: no build step.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

/** How to start the server: `archdsl lsp --stdio` (the client adds `--stdio`). */
function serverOptions() {
  const command = vscode.workspace.getConfiguration("archdsl").get("server.path") || "archdsl";
  return { command, args: ["lsp"], transport: TransportKind.stdio };
}

function clientOptions() {
  return {
    documentSelector: [
      { scheme: "file", language: "arch" },
      { scheme: "untitled", language: "arch" },
    ],
  };
}

async function activate(context) {
  client = new LanguageClient("archdsl", "archdsl language server", serverOptions(),
                              clientOptions());
  context.subscriptions.push(client);
  try {
    await client.start();
  } catch (err) {
    vscode.window.showErrorMessage(
      `archdsl: could not start \`${serverOptions().command} lsp\` (${err.message || err}). ` +
      "Install archdsl with its `editor` extra, or set `archdsl.server.path` to the archdsl " +
      "of your virtual environment.");
  }
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate, serverOptions, clientOptions };
