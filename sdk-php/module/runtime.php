<?php

/*
 * The PHP module runtime of `gantry call` (see gantry's docs/modules.md).
 *
 *   php runtime.php describe SPEC RESULT
 *   php runtime.php invoke SPEC RESULT      (request JSON on stdin)
 *
 * SPEC is a JSON object naming the module (`source`, `object`). The module's
 * Composer autoloader (the nearest vendor/autoload.php at or above the module,
 * which brings gantry's SDK) is loaded, then the main class: by the
 * autoloader, else from src/OBJECT.php, OBJECT.php or main.php. Its public
 * methods, read with Reflection (types, defaults, docblocks), are the
 * functions. `invoke` loads object arguments by ID into a `Gantry\Client`
 * connected to the engine session, calls the method with named arguments and
 * writes {"type", "value"|"id"} to RESULT. Exit status: 0 done, 1 the function
 * threw, 3 the module could not be loaded.
 *
 * A plain script on purpose: the gantry binary embeds this file and runs it
 * with `php`, whatever version of the SDK the module has installed.
 */

declare(strict_types=1);

const GANTRY_LOAD_FAILED = 3;
const GANTRY_OBJECTS = ['Directory', 'File', 'Secret', 'Container', 'CacheVolume'];

final class GantryModuleLoadError extends \RuntimeException
{
}

/**
 * @param array<string, mixed> $spec
 */
function gantry_load_class(array $spec): \ReflectionClass
{
    $source = (string) $spec['source'];
    $object = (string) $spec['object'];
    $autoload = null;
    for ($dir = $source; ; $dir = dirname($dir)) {
        if (is_file("$dir/vendor/autoload.php")) {
            $autoload = "$dir/vendor/autoload.php";
            break;
        }
        if (dirname($dir) === $dir) {
            break;
        }
    }
    if ($autoload === null) {
        throw new GantryModuleLoadError(
            "no vendor/autoload.php at or above $source: run `composer install` in the module (it needs gantry/sdk)"
        );
    }
    require_once $autoload;
    if (!class_exists($object)) {
        foreach (["$source/src/$object.php", "$source/$object.php", "$source/main.php"] as $file) {
            if (is_file($file)) {
                require_once $file;
                if (class_exists($object)) {
                    break;
                }
            }
        }
    }
    if (!class_exists($object)) {
        throw new GantryModuleLoadError("no class $object (the module's main object) in $source/src/$object.php, $source/$object.php or main.php");
    }
    return new \ReflectionClass($object);
}

/**
 * @return list<\ReflectionMethod>
 */
function gantry_functions(\ReflectionClass $class): array
{
    $out = [];
    foreach ($class->getMethods(\ReflectionMethod::IS_PUBLIC) as $method) {
        if ($method->isStatic() || $method->isConstructor() || str_starts_with($method->getName(), '_')
            || $method->getDeclaringClass()->getName() !== $class->getName()) {
            continue;
        }
        $out[] = $method;
    }
    return $out;
}

/**
 * A docblock as its text and its @param descriptions and types.
 *
 * @return array{0: string, 1: array<string, string>, 2: array<string, string>}
 */
function gantry_doc(string|false $comment): array
{
    if ($comment === false) {
        return ['', [], []];
    }
    $lines = preg_split('/\R/', $comment) ?: [];
    $text = [];
    $params = [];
    $types = [];
    foreach ($lines as $line) {
        $line = trim(preg_replace('#^\s*(/\*\*|\*/|\*)#', '', $line) ?? '');
        $line = trim(preg_replace('#\*/$#', '', $line) ?? '');
        if (preg_match('/^@param\s+(\S+)\s+\$(\w+)\s*(.*)$/', $line, $m) === 1) {
            $types[$m[2]] = $m[1];
            $params[$m[2]] = $m[3];
            continue;
        }
        if (str_starts_with($line, '@')) {
            continue;
        }
        $text[] = $line;
    }
    return [trim(implode("\n", $text)), $params, $types];
}

/**
 * A PHP type as [description type, optional, enum values or null].
 *
 * @return array{0: string, 1: bool, 2: list<string>|null}
 */
function gantry_type(?\ReflectionType $type, ?string $docType, string $where): array
{
    if ($type === null) {
        throw new GantryModuleLoadError("$where: declare a type (it becomes the flag's type)");
    }
    if (!$type instanceof \ReflectionNamedType) {
        throw new GantryModuleLoadError("$where: union and intersection types are not supported");
    }
    $optional = $type->allowsNull();
    $name = $type->getName();
    $scalars = ['string' => 'String', 'int' => 'Int', 'float' => 'Float', 'bool' => 'Boolean', 'void' => 'Void', 'null' => 'Void'];
    if (isset($scalars[$name])) {
        return [$scalars[$name], $optional, null];
    }
    if ($name === 'array') {
        $inner = 'String';
        if ($docType !== null && preg_match('/^(?:list<|array<)?(\w+)(?:>|\[\])$/', $docType, $m) === 1) {
            $inner = $scalars[$m[1]] ?? 'String';
        }
        return ["[$inner]", $optional, null];
    }
    $short = substr($name, (int) strrpos('\\' . $name, '\\'));
    if (in_array($short, GANTRY_OBJECTS, true) && str_starts_with($name, 'Gantry\\')) {
        return [$short, $optional, null];
    }
    if (enum_exists($name)) {
        $values = array_map(static fn (\UnitEnum $case): string => $case->name, $name::cases());
        return ['String', $optional, $values];
    }
    throw new GantryModuleLoadError("$where: unsupported type $name: use string, int, float, bool, array, or Gantry\\Directory, File, Secret, Container, CacheVolume");
}

/**
 * @return array<string, mixed>
 */
function gantry_describe_method(\ReflectionMethod $method): array
{
    [$text, $paramDocs, $paramTypes] = gantry_doc($method->getDocComment());
    $args = [];
    $where = $method->getDeclaringClass()->getName() . '::' . $method->getName();
    foreach ($method->getParameters() as $param) {
        $name = $param->getName();
        [$type, $optional, $values] = gantry_type($param->getType(), $paramTypes[$name] ?? null, "$where(\$$name)");
        $default = null;
        if ($param->isDefaultValueAvailable()) {
            $optional = true;
            $value = $param->getDefaultValue();
            if ($value instanceof \UnitEnum) {
                $default = $value->name;
            } elseif (is_scalar($value) || is_array($value)) {
                $default = $value;
            }
        }
        $args[] = [
            'name' => $name,
            'type' => $type,
            'optional' => $optional,
            'default' => $default,
            'description' => $paramDocs[$name] ?? '',
            'enum' => $values,
        ];
    }
    [$returns] = $method->hasReturnType()
        ? gantry_type($method->getReturnType(), null, "$where: return type")
        : ['Void'];
    return ['name' => $method->getName(), 'description' => $text, 'args' => $args, 'returns' => $returns];
}

function gantry_print_failure(\Throwable $error): void
{
    if ($error instanceof \Gantry\ExecError) {
        fwrite(STDERR, 'exec failed: ' . implode(' ', $error->getCmd()) . "\n  exit code: " . $error->getExitCode() . "\n");
        foreach (['stdout' => $error->getStdout(), 'stderr' => $error->getStderr()] as $stream => $text) {
            $text = rtrim($text);
            if ($text !== '') {
                $lines = array_slice(explode("\n", $text), -20);
                fwrite(STDERR, "  --- $stream (last lines) ---\n  " . implode("\n  ", $lines) . "\n");
            }
        }
        return;
    }
    fwrite(STDERR, (string) $error . "\n");
}

/**
 * @param array<string, mixed> $spec
 * @param array<string, mixed> $request
 * @return array<string, mixed>
 */
function gantry_invoke(array $spec, array $request): array
{
    $class = gantry_load_class($spec);
    $name = (string) ($request['function'] ?? '');
    $method = null;
    foreach (gantry_functions($class) as $candidate) {
        if ($candidate->getName() === $name) {
            $method = $candidate;
        }
    }
    if ($method === null) {
        throw new GantryModuleLoadError($class->getName() . " has no function $name");
    }
    $client = null;
    $given = is_array($request['args'] ?? null) ? $request['args'] : [];
    $args = [];
    foreach ($method->getParameters() as $param) {
        $key = $param->getName();
        if (!array_key_exists($key, $given) || $given[$key] === null) {
            continue;
        }
        $value = $given[$key];
        $type = $param->getType();
        $typeName = $type instanceof \ReflectionNamedType ? $type->getName() : '';
        $short = substr($typeName, (int) strrpos('\\' . $typeName, '\\'));
        if (in_array($short, GANTRY_OBJECTS, true)) {
            $client ??= \Gantry\Client::connect();
            $value = $client->{"load{$short}FromID"}((string) $value);
        } elseif ($typeName !== '' && enum_exists($typeName)) {
            $value = constant("$typeName::$value");
        } elseif ($typeName === 'float') {
            $value = (float) $value;
        }
        $args[$key] = $value;
    }
    $result = $method->invokeArgs($class->newInstance(), $args);
    $declared = gantry_describe_method($method)['returns'];
    if ($result === null) {
        return ['type' => 'Void'];
    }
    if (is_object($result) && in_array($declared, GANTRY_OBJECTS, true) && method_exists($result, 'id')) {
        return ['type' => $declared, 'id' => (string) $result->id()];
    }
    if ($result instanceof \UnitEnum) {
        $result = $result->name;
    }
    return ['type' => $declared, 'value' => $result];
}

function gantry_main(array $argv): int
{
    [, $verb, $specText, $resultPath] = $argv + [null, null, null, null];
    if (!in_array($verb, ['describe', 'invoke'], true) || !is_string($specText) || !is_string($resultPath)) {
        fwrite(STDERR, "usage: runtime.php describe|invoke SPEC RESULT\n");
        return 2;
    }
    $spec = json_decode($specText, true, 512, JSON_THROW_ON_ERROR);
    if ($verb === 'describe') {
        try {
            $class = gantry_load_class($spec);
            [$text] = gantry_doc($class->getDocComment());
            $description = [
                'object' => $spec['object'],
                'description' => $text,
                'functions' => array_map('gantry_describe_method', gantry_functions($class)),
            ];
        } catch (\Throwable $error) {
            fwrite(STDERR, $error instanceof GantryModuleLoadError ? 'error: ' . $error->getMessage() . "\n" : (string) $error . "\n");
            return GANTRY_LOAD_FAILED;
        }
        file_put_contents($resultPath, json_encode($description, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES));
        return 0;
    }
    $request = json_decode((string) stream_get_contents(STDIN) ?: '{}', true, 512, JSON_THROW_ON_ERROR);
    try {
        $answer = gantry_invoke($spec, is_array($request) ? $request : []);
    } catch (GantryModuleLoadError $error) {
        fwrite(STDERR, 'error: ' . $error->getMessage() . "\n");
        return GANTRY_LOAD_FAILED;
    } catch (\Throwable $error) {
        gantry_print_failure($error);
        return 1;
    }
    file_put_contents($resultPath, json_encode($answer, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES));
    return 0;
}

exit(gantry_main($argv));
