<?php

/**
 * A service in PHP: test a client against a web server the pipeline starts.
 *
 *     php services.php
 *
 * The server (busybox httpd) runs as a service bound to the client container
 * under the alias `www`; gantry starts it when the client's step runs, waits
 * until its exposed port accepts connections, and stops it when no step needs
 * it any more. Services run on both runtimes (native and Docker).
 */

declare(strict_types=1);

namespace Gantry\Examples;

use Gantry\Client;
use Gantry\Service;

final class ServicesExample
{
    public function __construct(private readonly Client $client)
    {
    }

    /** An HTTP server on port 8080 serving `$page` at /. */
    public function webServer(string $page): Service
    {
        return $this->client->container()->from(self::image())
            ->withNewFile('/www/index.html', $page)
            ->withExposedPort(8080)
            ->asService(args: ['httpd', '-f', '-p', '8080', '-h', '/www']);
    }

    /** What a client container reads from the server, by its alias. */
    public function fetchPage(string $page): string
    {
        return $this->client->container()->from(self::image())
            ->withServiceBinding('www', $this->webServer($page))
            ->withExec(['wget', '-qO-', 'http://www:8080/'])
            ->stdout();
    }

    public static function image(): string
    {
        $image = getenv('SERVICES_IMAGE');
        return is_string($image) && $image !== '' ? $image : '127.0.0.1:5000/gantry-fixtures/busybox:latest';
    }
}

if (PHP_SAPI === 'cli' && realpath((string) ($_SERVER['SCRIPT_FILENAME'] ?? '')) === __FILE__) {
    $autoload = __DIR__ . '/../vendor/autoload.php';
    require is_file($autoload) ? $autoload : __DIR__ . '/../../vendor/autoload.php';
    echo (new ServicesExample(Client::connect()))->fetchPage("hello from a service\n");
}
