// Test stand-in for ms-python.python: the part of the documented @vscode/python-extension API
// that the floe extension uses (see README.md). Not the real Python extension.
'use strict';
const vscode = require('vscode');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');

const PROBE = 'import json,sys; print(json.dumps([sys.prefix, list(sys.version_info[:3]), sys.version, sys.maxsize > 2**32]))';

function activate(context) {
  const changed = new vscode.EventEmitter();
  let selected = vscode.workspace.getConfiguration('python').get('defaultInterpreterPath') || 'python';

  function pathOf(env) {
    return typeof env === 'string' ? env : env.path;
  }

  // An environment folder stands for its bin/python, as in the real API.
  function executableOf(p) {
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
      return path.join(p, 'bin', 'python');
    }
    if (!p.includes(path.sep)) {
      const dir = (process.env.PATH || '').split(path.delimiter).find((d) => d && fs.existsSync(path.join(d, p)));
      return dir ? path.join(dir, p) : p;
    }
    return p;
  }

  const environments = {
    getActiveEnvironmentPath(_resource) {
      return { id: selected, path: selected };
    },
    resolveEnvironment(env) {
      const p = pathOf(env);
      const exe = executableOf(p);
      return new Promise((resolve) => {
        execFile(exe, ['-c', PROBE], { timeout: 10000 }, (err, stdout) => {
          if (err) {
            resolve(undefined); // the real API: undefined for an invalid environment
            return;
          }
          const [sysPrefix, [major, minor, micro], sysVersion, is64] = JSON.parse(stdout);
          const venv = fs.existsSync(path.join(sysPrefix, 'pyvenv.cfg'));
          resolve({
            id: p,
            path: p,
            executable: { uri: vscode.Uri.file(exe), bitness: is64 ? '64-bit' : '32-bit', sysPrefix },
            environment: venv
              ? { type: 'VirtualEnvironment', name: path.basename(sysPrefix), folderUri: vscode.Uri.file(sysPrefix), workspaceFolder: undefined }
              : undefined,
            version: { major, minor, micro, release: { level: 'final', serial: 0 }, sysVersion },
            tools: venv ? ['Venv'] : [],
          });
        });
      });
    },
    onDidChangeActiveEnvironmentPath: changed.event,
    async updateActiveEnvironmentPath(env, resource) {
      selected = pathOf(env);
      changed.fire({ id: selected, path: selected, resource });
    },
  };

  context.subscriptions.push(
    changed,
    vscode.commands.registerCommand('python.setInterpreter', async () => {
      const value = await vscode.window.showInputBox({ prompt: 'Enter interpreter path', value: selected });
      if (value) {
        await environments.updateActiveEnvironmentPath(value);
      }
    }),
  );
  return { ready: Promise.resolve(), environments };
}

module.exports = { activate, deactivate() {} };
