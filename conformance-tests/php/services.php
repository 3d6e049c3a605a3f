<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

const HTTPD = ['httpd', '-f', '-p', '8080', '-h', '/www'];
// Mounting a filesystem needs root's capabilities (insecureRootCapabilities).
const MOUNT = 'mkdir -p /m && mount -t tmpfs tmpfs /m && echo mounted || echo refused';

$client = \Gantry\Client::connect();
$web = $client->container()->from(BUSYBOX)
    ->withNewFile('/www/index.html', "hello from the service\n")
    ->withExposedPort(8080)
    ->asService(args: HTTPD);
$clientCtr = $client->container()->from(BUSYBOX)->withEnvVariable('MARKER', MARKER);
$page = $clientCtr->withServiceBinding('www', $web)
    ->withExec(['wget', '-qO-', 'http://www:8080/'])
    ->stdout();
echo 'page: ', trim($page), "\n";
foreach ($web->ports() as $port) {
    echo 'port: ', $port->port(), '/', $port->protocol()->value, "\n";
}
$hostname = $web->hostname();
$endpoint = $web->endpoint(scheme: 'http');
echo 'endpoint is http://HOSTNAME:8080: ', $endpoint === "http://{$hostname}:8080" ? 'true' : 'false', "\n";
$broken = $client->container()->from(BUSYBOX)->withExposedPort(8080)
    ->asService(args: ['sh', '-c', 'echo broken service; exit 3']);
try {
    $clientCtr->withServiceBinding('db', $broken)->withExec(['true'])->sync();
    echo "no error\n";
} catch (\Gantry\ExecError $error) {
    echo "caught ExecError\n";
    echo 'exit code: ', $error->getExitCode(), "\n";
    echo 'stdout: ', trim($error->getStdout()), "\n";
}
$mount = ['sh', '-c', MOUNT];
$privileged = $clientCtr->withExec($mount, insecureRootCapabilities: true)->stdout();
echo 'privileged exec: ', trim($privileged), "\n";
echo 'plain exec: ', trim($clientCtr->withExec($mount)->stdout()), "\n";
$capable = $client->container()->from(BUSYBOX)->withExposedPort(8080)
    ->asService(
        args: ['sh', '-c', 'mkdir -p /www; (' . MOUNT . ') > /www/index.html; exec ' . implode(' ', HTTPD)],
        insecureRootCapabilities: true,
    );
$answer = $clientCtr->withServiceBinding('capable', $capable)
    ->withExec(['wget', '-qO-', 'http://capable:8080/'])
    ->stdout();
echo 'privileged service: ', trim($answer), "\n";
