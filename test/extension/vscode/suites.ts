// Every suite that runs inside the extension host, bundled into one file for mocha.
import '../endToEnd.vscode.test';
import '../secrets.vscode.test';
import '../reviewWorkspace.vscode.test';
import '../reviewLifecycle.vscode.test';
import '../streamLoss.vscode.test';
