// Floe for VS Code: starts floe-lsp, found without settings, and adds the commands,
// status bar, tasks and lineage webview around it (DESIGN §6 "Editor clients").
import * as vscode from 'vscode';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageclient/node';

/** How the server is started, and how to run floe-runtime with the same installation. */
interface Server {
  how: string;
  command: string;
  args: string[];
  runtime: string[]; // argv prefix of floe-runtime
}

const SCHEMA_CODES = new Set(['FLOE001', 'FLOE002', 'FLOE003', 'FLOE004', 'FLOE005']);

let client: LanguageClient | undefined;
let current: Server | undefined;
let output: vscode.OutputChannel;
let traceOutput: vscode.OutputChannel;
let status: vscode.StatusBarItem;
let lineagePanel: vscode.WebviewPanel | undefined;
let lineageFile: string | undefined;
let starting: Promise<void> | undefined;
let activatedAt = 0;
let firstDiagnostics = true;

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('floe');
}

function log(line: string): void {
  output.appendLine(`[floe] ${line}`);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) {
      return path.join(dir, name);
    }
  }
  return undefined;
}

function resolveExecutable(cmd: string): string | undefined {
  return cmd.includes(path.sep) ? (isExecutable(cmd) ? cmd : undefined) : onPath(cmd);
}

/** True when `python` can import floe_lsp (without importing it: a spec lookup). */
function hasFloeLsp(python: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      python,
      ['-c', 'import importlib.util,sys; sys.exit(importlib.util.find_spec("floe_lsp") is None)'],
      { timeout: 10000 },
      (err) => resolve(!err),
    );
  });
}

/** floe-runtime next to a floe-lsp executable, or `python -m floe_runtime`. */
function runtimeFor(command: string, args: string[]): string[] {
  const m = args.indexOf('-m');
  if (m >= 0 && args[m + 1] === 'floe_lsp') {
    return [command, ...args.slice(0, m), '-m', 'floe_runtime'];
  }
  if (path.basename(command) === 'floe-lsp') {
    const sibling = path.join(path.dirname(command), 'floe-runtime');
    if (isExecutable(sibling)) {
      return [sibling];
    }
  }
  return [onPath('floe-runtime') ?? 'floe-runtime'];
}

async function pythonApiInterpreter(): Promise<string | undefined> {
  if (!vscode.extensions.getExtension('ms-python.python')) {
    return undefined;
  }
  try {
    const { PythonExtension } = await import('@vscode/python-extension');
    const api = await PythonExtension.api();
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const env = await api.environments.resolveEnvironment(api.environments.getActiveEnvironmentPath(folder));
    return env?.executable.uri?.fsPath;
  } catch (err) {
    log(`Python extension API unavailable: ${String(err)}`);
    return undefined;
  }
}

/** Discovery, in order: setting → Python extension interpreter → PATH → workspace .venv. */
async function findServer(tried: string[]): Promise<Server | undefined> {
  const argv = config().get<string[]>('server.command') ?? [];
  if (argv.length > 0) {
    const exe = resolveExecutable(argv[0]);
    if (exe) {
      return { how: 'floe.server.command', command: exe, args: argv.slice(1), runtime: runtimeFor(exe, argv.slice(1)) };
    }
    tried.push(`setting floe.server.command: ${argv[0]} is not an executable`);
  } else {
    tried.push('setting floe.server.command: not set');
  }
  const python = await pythonApiInterpreter();
  if (python) {
    if (await hasFloeLsp(python)) {
      return { how: `Python interpreter ${python}`, command: python, args: ['-m', 'floe_lsp'], runtime: [python, '-m', 'floe_runtime'] };
    }
    tried.push(`selected Python interpreter ${python}: floe_lsp is not installed in it`);
  } else {
    tried.push('Python extension: not installed or no interpreter selected');
  }
  const fromPath = onPath('floe-lsp');
  if (fromPath) {
    return { how: `PATH (${fromPath})`, command: fromPath, args: [], runtime: runtimeFor(fromPath, []) };
  }
  tried.push('floe-lsp on PATH: not found');
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const venv = path.join(folder.uri.fsPath, '.venv', 'bin', 'floe-lsp');
    if (isExecutable(venv)) {
      return { how: `workspace venv (${venv})`, command: venv, args: [], runtime: runtimeFor(venv, []) };
    }
    tried.push(`${venv}: not found`);
  }
  return undefined;
}

async function notFound(tried: string[], reason?: string): Promise<void> {
  const head = reason ?? 'Floe: the language server floe-lsp was not found.';
  const text = `${head} Tried: ${tried.join('; ')}. Install floe-runtime in the workspace .venv or set floe.server.command.`;
  log(text);
  const pick = await vscode.window.showErrorMessage(text, 'Select interpreter', 'Open settings', 'Show output');
  if (pick === 'Select interpreter') {
    await vscode.commands.executeCommand('python.setInterpreter').then(undefined, () =>
      vscode.window.showWarningMessage('Floe: the Python extension is not installed; set floe.server.command instead.'),
    );
  } else if (pick === 'Open settings') {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'floe.server');
  } else if (pick === 'Show output') {
    output.show(true);
  }
}

function firstSeen(uri: vscode.Uri, count: number): void {
  if (firstDiagnostics) {
    firstDiagnostics = false;
    log(`first diagnostics ${Date.now() - activatedAt} ms after activation (${uri.fsPath}: ${count})`);
  }
}

/** Schema findings left to Red Hat YAML's JSON Schema validation, when it is installed. */
function dedupe(diagnostics: vscode.Diagnostic[]): vscode.Diagnostic[] {
  const on =
    config().get<boolean>('yamlValidation.deduplicate', true) &&
    vscode.extensions.getExtension('redhat.vscode-yaml') !== undefined;
  return on ? diagnostics.filter((d) => !SCHEMA_CODES.has(String(typeof d.code === 'object' ? d.code.value : d.code))) : diagnostics;
}

function clientOptions(): LanguageClientOptions {
  return {
    documentSelector: [
      { scheme: 'file', pattern: '**/floe.yaml' },
      { scheme: 'file', pattern: '**/platform.yaml' },
    ],
    outputChannel: output,
    traceOutputChannel: traceOutput,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    synchronize: { configurationSection: 'floe' },
    middleware: {
      window: {
        showDocument: async (params, next) => {
          if (params.uri.endsWith('lineage.html') && config().get('lineage.openIn') !== 'browser') {
            showLineage(vscode.Uri.parse(params.uri).fsPath);
            return { success: true };
          }
          const result = await next(params, new vscode.CancellationTokenSource().token);
          return result instanceof Error ? { success: false } : result;
        },
      },
      // Push (publishDiagnostics) and pull (textDocument/diagnostic) both pass here.
      handleDiagnostics: (uri, diagnostics, next) => {
        firstSeen(uri, diagnostics.length);
        next(uri, dedupe(diagnostics));
      },
      provideDiagnostics: async (document, previousResultId, token, next) => {
        const report = await next(document, previousResultId, token);
        if (report && report.kind === 'full') {
          firstSeen(document instanceof vscode.Uri ? document : document.uri, report.items.length);
          return { ...report, items: dedupe(report.items) };
        }
        return report;
      },
    },
  };
}

async function start(): Promise<void> {
  const tried: string[] = [];
  const server = await findServer(tried);
  if (!server) {
    status.text = '$(error) floe: no server';
    status.show();
    void notFound(tried);
    return;
  }
  log(`starting ${[server.command, ...server.args].join(' ')} (found via ${server.how})`);
  const options: ServerOptions = { command: server.command, args: server.args, options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath } };
  const c = new LanguageClient('floe', 'Floe', options, clientOptions());
  c.onDidChangeState((e) => {
    if (e.newState === State.Stopped && client === c) {
      status.text = '$(error) floe: stopped';
    }
  });
  const t0 = Date.now();
  try {
    await c.start();
  } catch (err) {
    tried.push(`${server.how}: failed to start (${String(err)})`);
    await notFound(tried, 'Floe: the language server did not start.');
    return;
  }
  log(`server ready in ${Date.now() - t0} ms`);
  // The server's work-done progress (compile, run, lineage) as a notification with Cancel,
  // rather than the client's default status-bar item; Cancel terminates the run.
  c.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => notificationProgress(c, token));
  client = c;
  current = server;
  await updateStatus();
}

function notificationProgress(c: LanguageClient, token: string | number): void {
  let report: vscode.Progress<{ message?: string }> | undefined;
  let finish: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => (finish = resolve));
  const sub = c.onProgress(WorkDoneProgress.type, token, (value) => {
    if (value.kind === 'begin') {
      void vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: value.title, cancellable: value.cancellable ?? false },
        (progress, cancel) => {
          report = progress;
          if (value.message) {
            progress.report({ message: value.message });
          }
          cancel.onCancellationRequested(() => void c.sendNotification(WorkDoneProgressCancelNotification.type, { token }));
          return ended;
        },
      );
    } else if (value.kind === 'report') {
      report?.report({ message: value.message });
    } else {
      finish();
      sub.dispose();
    }
  });
}

async function stop(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) {
    await c.stop().catch(() => undefined);
  }
}

async function restart(): Promise<void> {
  if (starting) {
    await starting;
  }
  starting = (async () => {
    await stop();
    await start();
  })();
  try {
    await starting;
  } finally {
    starting = undefined;
  }
}

// ---------------------------------------------------------------- environments and commands
interface Environments {
  pipeline: string;
  environments: string[];
}

async function serverCommand<T>(command: string, args: unknown[]): Promise<T | undefined> {
  if (!client) {
    await vscode.window.showErrorMessage('Floe: the language server is not running.', 'Show output').then((p) => p && output.show(true));
    return undefined;
  }
  return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args })) as T;
}

async function environments(): Promise<Environments[]> {
  return (await serverCommand<Environments[]>('floe.listEnvironments', [])) ?? [];
}

async function updateStatus(): Promise<void> {
  const env = config().get<string>('environment') || '';
  let text = env;
  if (!env && client) {
    const found = await environments().catch(() => []);
    const names = [...new Set(found.flatMap((p) => p.environments))];
    text = names.length ? `all (${names.join(', ')})` : 'none';
  }
  status.text = `$(server-environment) floe: ${text}`;
  status.tooltip = 'Floe environment used by Compile / Run / Open Lineage (click to change)';
  status.command = 'floe.selectEnvironment';
  status.show();
}

async function selectEnvironment(): Promise<void> {
  const found = await environments();
  const names = [...new Set(found.flatMap((p) => p.environments))];
  const items: vscode.QuickPickItem[] = [
    ...names.map((n) => ({ label: n, description: found.filter((p) => p.environments.includes(n)).map((p) => p.pipeline).join(', ') })),
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    { label: 'All environments', description: 'one code lens per environment' },
  ];
  const pick = await vscode.window.showQuickPick(items, { placeHolder: 'Floe environment' });
  if (!pick) {
    return;
  }
  const value = pick.label === 'All environments' ? '' : pick.label;
  const target = vscode.workspace.workspaceFolders ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await config().update('environment', value, target);
}

function pipelineUri(): string | undefined {
  const doc = vscode.window.activeTextEditor?.document;
  if (doc && (doc.fileName.endsWith('floe.yaml') || doc.fileName.endsWith('platform.yaml'))) {
    return doc.uri.toString();
  }
  return undefined;
}

async function pickPipeline(): Promise<string | undefined> {
  const active = pipelineUri();
  if (active) {
    return active;
  }
  const found = await environments();
  if (found.length === 1) {
    return vscode.Uri.file(found[0].pipeline).toString();
  }
  const pick = await vscode.window.showQuickPick(found.map((p) => p.pipeline), { placeHolder: 'Which floe.yaml?' });
  return pick ? vscode.Uri.file(pick).toString() : undefined;
}

async function runServerCommand(command: string): Promise<void> {
  const uri = await pickPipeline();
  if (!uri) {
    return;
  }
  const env = config().get<string>('environment') || null;
  await serverCommand(command, [uri, env]);
  if (command === 'floe.run' && lineagePanel && lineageFile) {
    // Refresh the open lineage view with the new run.
    await serverCommand('floe.openLineage', [uri, env]);
  }
}

// ---------------------------------------------------------------- lineage webview
function showLineage(file: string): void {
  lineageFile = file;
  if (!lineagePanel) {
    lineagePanel = vscode.window.createWebviewPanel('floe.lineage', 'Floe lineage', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: [],
    });
    lineagePanel.onDidDispose(() => (lineagePanel = undefined));
    lineagePanel.webview.onDidReceiveMessage(async (msg: { type?: string; path?: string }) => {
      if (msg.type === 'open' && msg.path) {
        const root = lineageFile ? path.resolve(path.dirname(lineageFile), '..', '..') : '';
        const target = path.isAbsolute(msg.path) ? msg.path : path.join(root, msg.path);
        const found = fs.existsSync(target) ? target : findSql(root, msg.path);
        if (found) {
          await vscode.window.showTextDocument(vscode.Uri.file(found), { viewColumn: vscode.ViewColumn.One });
        } else {
          void vscode.window.showWarningMessage(`Floe: ${msg.path} not found`);
        }
      } else if (msg.type === 'browser' && lineageFile) {
        await vscode.env.openExternal(vscode.Uri.file(lineageFile));
      }
    });
  }
  lineagePanel.webview.html = fs.readFileSync(file, 'utf8');
  lineagePanel.reveal(vscode.ViewColumn.Beside, true);
}

/** A model's .sql path is relative to the dbt project: look for it below the project root. */
function findSql(root: string, rel: string): string | undefined {
  const queue = [root];
  for (let i = 0; i < queue.length && i < 200; i++) {
    const dir = queue[i];
    const candidate = path.join(dir, rel);
    if (fs.existsSync(candidate)) {
      return candidate;
    }
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory() && !e.name.startsWith('.') && !['node_modules', 'target', 'dbt_packages'].includes(e.name)) {
        queue.push(path.join(dir, e.name));
      }
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- tasks
interface FloeTask extends vscode.TaskDefinition {
  command: string;
  env?: string;
  path?: string;
}

function makeTask(def: FloeTask, scope: vscode.WorkspaceFolder | vscode.TaskScope): vscode.Task {
  const runtime = current?.runtime ?? [onPath('floe-runtime') ?? 'floe-runtime'];
  const folder = typeof scope === 'object' ? scope.uri.fsPath : vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '.';
  const env = def.env || config().get<string>('environment') || '';
  const args = [...runtime.slice(1), def.command, def.path ?? folder];
  if (env && def.command !== 'validate') {
    args.push('--env', env);
  }
  if (def.command === 'lineage') {
    args.push('--no-open');
  }
  const task = new vscode.Task(def, scope, `${def.command}${env ? ` (${env})` : ''}`, 'floe',
    new vscode.ProcessExecution(runtime[0], args, { cwd: folder }), ['$floe']);
  if (def.command === 'validate') {
    task.group = vscode.TaskGroup.Test;
  } else if (def.command === 'compile') {
    task.group = vscode.TaskGroup.Build;
  }
  return task;
}

async function validateWorkspace(): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    return;
  }
  await vscode.tasks.executeTask(makeTask({ type: 'floe', command: 'validate' }, folder));
}

// ---------------------------------------------------------------- activation
export async function activate(context: vscode.ExtensionContext): Promise<void> {
  activatedAt = Date.now();
  output = vscode.window.createOutputChannel('Floe');
  traceOutput = output;
  status = vscode.window.createStatusBarItem('floe.environment', vscode.StatusBarAlignment.Left, 10);
  status.name = 'Floe environment';
  context.subscriptions.push(output, status);
  const reg = (id: string, fn: () => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  reg('floe.palette.run', () => runServerCommand('floe.run'));
  reg('floe.palette.compile', () => runServerCommand('floe.compile'));
  reg('floe.palette.openLineage', () => runServerCommand('floe.openLineage'));
  reg('floe.selectEnvironment', selectEnvironment);
  reg('floe.validateWorkspace', validateWorkspace);
  reg('floe.restartServer', restart);
  reg('floe.showOutput', () => output.show(true));
  context.subscriptions.push(
    vscode.tasks.registerTaskProvider('floe', {
      provideTasks: () => {
        const folder = vscode.workspace.workspaceFolders?.[0];
        return folder ? ['validate', 'compile', 'run', 'lineage'].map((c) => makeTask({ type: 'floe', command: c }, folder)) : [];
      },
      resolveTask: (task) => makeTask(task.definition as FloeTask, task.scope ?? vscode.TaskScope.Workspace),
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('floe.server.command')) {
        await restart();
      } else if (e.affectsConfiguration('floe.environment')) {
        await updateStatus();
      }
    }),
  );
  if (vscode.extensions.getExtension('ms-python.python')) {
    try {
      const { PythonExtension } = await import('@vscode/python-extension');
      const api = await PythonExtension.api();
      context.subscriptions.push(api.environments.onDidChangeActiveEnvironmentPath(() => void restart()));
    } catch (err) {
      log(`Python extension API unavailable: ${String(err)}`);
    }
  }
  await restart();
}

export async function deactivate(): Promise<void> {
  await stop();
}
