<?php

declare(strict_types=1);

require __DIR__ . '/common.php';

$client = \Gantry\Client::connect();
$repo = $client->git(env('CONFORMANCE_GIT_URL'));
echo 'branches: ', implode(' ', $repo->branches()), "\n";
echo 'tags: ', implode(' ', $repo->tags()), "\n";
$mainTree = $repo->branch('main')->tree(discardGitDir: true);
echo 'main README: ', trim($mainTree->file('README.md')->contents()), "\n";
echo 'main entries: ', implode(' ', $mainTree->entries()), "\n";
$tag = $repo->tag('v1.0.0');
echo 'tag ref: ', $tag->ref(), "\n";
echo 'tag README: ', trim($tag->tree()->file('README.md')->contents()), "\n";
$commit = $tag->commit();
echo 'tag commit is 40 hex: ', preg_match('/^[0-9a-f]{40}$/', $commit) === 1 ? 'true' : 'false', "\n";
$byCommit = $repo->commit($commit)->tree(discardGitDir: true);
echo 'commit app: ', trim($byCommit->file('src/app.txt')->contents()), "\n";
echo 'commit entries: ', implode(' ', $byCommit->entries()), "\n";
$feature = $repo->branch('feature')->tree(discardGitDir: true);
echo 'feature entries: ', implode(' ', $feature->entries()), "\n";
$head = $repo->head()->commit();
echo 'head is main: ', $head === $repo->branch('main')->commit() ? 'true' : 'false', "\n";
$out = $client->container()->from(BUSYBOX)
    ->withEnvVariable('MARKER', MARKER)
    ->withDirectory('/src', $feature)
    ->withExec(['cat', '/src/feature.txt', '/src/README.md'])
    ->stdout();
echo 'in a container: ', implode(' | ', explode("\n", trim($out))), "\n";
