<?php

// Shared by the PHP scenarios: the SDK's autoloader, fixture images and the
// runner's variables.

declare(strict_types=1);

require __DIR__ . '/../../sdk-php/vendor/autoload.php';

function env(string $name, string $default = ''): string
{
    $value = getenv($name);
    return is_string($value) && $value !== '' ? $value : $default;
}

$fixtures = env('GANTRY_TEST_FIXTURES', '127.0.0.1:5000/gantry-fixtures');
define('BUSYBOX', "$fixtures/busybox:latest");
define('GOLANG', "$fixtures/golang:latest");
define('STATIC_IMAGE', "$fixtures/static:nonroot");
define('AUTH_REGISTRY', env('GANTRY_TEST_AUTH_REGISTRY', '127.0.0.1:5001'));
define('AUTH_USER', env('GANTRY_TEST_AUTH_REGISTRY_USER', 'gantry'));
define('AUTH_PASSWORD', env('GANTRY_TEST_AUTH_REGISTRY_PASSWORD', 'gantry-test-password'));

// Set by run.py: unique per SDK and run, the run number (two-run scenarios),
// a folder for exports.
define('MARKER', env('CONFORMANCE_MARKER'));
define('RUN', env('CONFORMANCE_RUN', '1'));
define('OUT', env('CONFORMANCE_OUT'));
