<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

const HOSTDIR = '../fixtures/hostdir';

/** Relative path => contents of every file under $root, sorted by path. */
function tree(string $root, string $skipSuffix = ''): array
{
    $files = [];
    $iterator = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($root, FilesystemIterator::SKIP_DOTS));
    foreach ($iterator as $path => $info) {
        if ($info->isFile() && ($skipSuffix === '' || !str_ends_with($path, $skipSuffix))) {
            $files[substr($path, strlen($root) + 1)] = file_get_contents($path);
        }
    }
    ksort($files);
    return $files;
}

function sorted(array $list): string
{
    sort($list);
    return implode(' ', $list);
}

$client = \Gantry\Client::connect();
$src = $client->host()->directory(HOSTDIR, exclude: ['**/*.log']);
echo 'exclude **/*.log: ', sorted($src->glob('**')), "\n";
$txt = $client->host()->directory(HOSTDIR, include: ['**/*.txt']);
echo 'include **/*.txt: ', sorted($txt->glob('**')), "\n";

$ctr = $client->container()
    ->from(BUSYBOX)
    ->withEnvVariable('MARKER', MARKER)
    ->withDirectory('/src', $src)
    ->withExec(['sh', '-c', 'mkdir -p /out && cat /src/a.txt /src/sub/c.txt > /out/combined.txt'
        . ' && ls -R /src > /out/listing.txt']);
$combined = $ctr->file('/out/combined.txt')->contents();
echo 'combined.txt: ', implode(' ', preg_split('/\s+/', $combined, -1, PREG_SPLIT_NO_EMPTY)), "\n";

$ctr->directory('/out')->export(OUT . '/out');
echo 'exported /out: ', sorted(array_values(array_diff(scandir(OUT . '/out'), ['.', '..']))), "\n";
$ctr->file('/out/combined.txt')->export(OUT . '/combined.txt');
$same = file_get_contents(OUT . '/combined.txt')
    === file_get_contents(HOSTDIR . '/a.txt') . file_get_contents(HOSTDIR . '/sub/c.txt');
echo 'exported combined.txt equals the host files: ', $same ? 'true' : 'false', "\n";

$src->export(OUT . '/src');
$same = tree(OUT . '/src') === tree(HOSTDIR, '.log');
echo 'exported source equals the host directory without *.log: ', $same ? 'true' : 'false', "\n";
