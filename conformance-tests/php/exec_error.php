<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

const SCRIPT = 'echo out; echo err >&2; exit 3';

$client = \Gantry\Client::connect();
$base = $client->container()->from(BUSYBOX)->withEnvVariable('MARKER', MARKER);
try {
    $base->withExec(['sh', '-c', SCRIPT])->sync();
    echo "no error\n";
} catch (\Gantry\ExecError $error) {
    echo "caught ExecError\n";
    echo 'exit code: ', $error->getExitCode(), "\n";
    echo 'stdout: ', trim($error->getStdout()), "\n";
    echo 'stderr: ', trim($error->getStderr()), "\n";
    echo 'cmd: ', implode(' ', $error->getCmd()), "\n";
}
$code = $base->withExec(['sh', '-c', SCRIPT], expect: \Gantry\ReturnType::ANY)->exitCode();
echo 'expect ANY, exit code: ', $code, "\n";
