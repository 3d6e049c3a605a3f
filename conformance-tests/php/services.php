<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

const HTTPD = ['httpd', '-f', '-p', '8080', '-h', '/www'];

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
