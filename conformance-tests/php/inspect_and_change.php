<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

use Gantry\ExistsType;

$client = \Gantry\Client::connect();
$old = $client->directory()->withNewFile('a.txt', "alpha\n")->withNewFile('b/c.txt', "beta\n");
$new = $old->withNewFile('a.txt', "alpha\nalphabet\n")->withoutDirectory('b')->withSymlink('a.txt', 'link');
$changes = $new->changes($old);
echo 'added: ', implode(' ', $changes->addedPaths()), "\n";
echo 'modified: ', implode(' ', $changes->modifiedPaths()), "\n";
echo 'removed: ', implode(' ', $changes->removedPaths()), "\n";
$link = $new->exists('link', expectedType: ExistsType::SYMLINK_TYPE, doNotFollowSymlinks: true);
echo 'link is a symlink: ', $link ? 'true' : 'false', "\n";
$stat = $new->stat('link');
echo 'link stat: ', $stat->fileType()->value, ' ', $stat->size(), "\n";
$found = [];
foreach ($new->search('alpha') as $result) {
    $found[] = $result->filePath() . ':' . $result->lineNumber();
}
echo 'search alpha: ', implode(' ', $found), "\n";
$patched = $old->withPatch($changes->asPatch()->contents());
echo 'patch reproduces the new directory: ', $patched->digest() === $new->digest() ? 'true' : 'false', "\n";

$items = $client->json()->withContents('{"k": [1, 2]}')->field(['k'])->asArray();
echo 'json: ', count($items), ' items, last ', $items[count($items) - 1]->asInteger(), "\n";
$env = $client->envFile()->withVariable('A', '1')->withVariable('B', '${A}-2');
echo 'env B: ', $env->get('B'), "\n";

$ctr = $client->container()->from(BUSYBOX)->withEnvVariable('MARKER', MARKER)
    ->withExec(['sh', '-c', 'echo x > /made'])->withoutFile('/made');
echo 'removed from the image: ', $ctr->exists('/made') ? 'false' : 'true', "\n";
$out = $ctr->withExec(['sh', '-c', 'echo out; sleep 0.2; echo err >&2'])->combinedOutput();
echo 'combined: ', implode(' ', preg_split('/\s+/', trim($out))), "\n";
echo 'default platform is linux: ', str_starts_with($client->defaultPlatform(), 'linux/') ? 'true' : 'false', "\n";
