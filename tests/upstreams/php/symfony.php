<?php
// A small Symfony application (HttpFoundation + Routing, Debian's php-symfony-* 5.4), as the
// framework documents it, for the end-to-end tests. Run by PHP's built-in server as its
// router script: `php -S 127.0.0.1:PORT symfony.php`, with PORTCULLIS_TEST_LOG naming the log.
//
// What a real deployment does: the `_method` parameter override is enabled (Symfony forms
// use it for PUT and DELETE; a POST's `_method` in the body or the query wins), the proxy is
// trusted for X-Forwarded-Host, and routes use the documented `.{_format}` suffix. PHP itself
// rewrites parameter names before Symfony sees them (`.method` and ` _method` are `_method`).
//
// Every request a route serves is appended to the log as a JSON line: the test's
// x-test-id, the resource, the method, the host the app saw and the identity headers.
require_once 'Symfony/Component/HttpFoundation/autoload.php';
require_once 'Symfony/Component/Routing/autoload.php';

use Symfony\Component\HttpFoundation\JsonResponse;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\Routing\Exception\ExceptionInterface;
use Symfony\Component\Routing\Matcher\UrlMatcher;
use Symfony\Component\Routing\RequestContext;
use Symfony\Component\Routing\Route;
use Symfony\Component\Routing\RouteCollection;

Request::enableHttpMethodParameterOverride();
Request::setTrustedProxies(['127.0.0.1'], Request::HEADER_X_FORWARDED_FOR | Request::HEADER_X_FORWARDED_HOST
    | Request::HEADER_X_FORWARDED_PORT | Request::HEADER_X_FORWARDED_PROTO);
$request = Request::createFromGlobals();

$routes = new RouteCollection();
$add = function (string $name, string $path, array $methods = [], array $extra = []) use ($routes) {
    $routes->add($name, new Route($path, $extra['defaults'] ?? [], $extra['requirements'] ?? [], [],
        $extra['host'] ?? '', [], $methods));
};
$add('admin-host', '/{rest}', [], ['host' => 'admin.example.com', 'requirements' => ['rest' => '.*'],
    'defaults' => ['rest' => '']]);
$add('admin', '/admin/{rest}', [], ['requirements' => ['rest' => '.*'], 'defaults' => ['rest' => '']]);
$add('public', '/public/{rest}', [], ['requirements' => ['rest' => '.*'], 'defaults' => ['rest' => '']]);
$add('orders-export', '/api/orders/export.{_format}', ['GET'], ['defaults' => ['_format' => 'json']]);
$add('orders-history', '/api/orders/{id}/history', ['GET']);
$add('order', '/api/orders/{id}', ['GET']);
$add('order-deleted', '/api/orders/{id}', ['DELETE']);
$add('orders-list', '/api/orders', ['GET']);
$add('order-created', '/api/orders', ['POST']);

$context = (new RequestContext())->fromRequest($request);
try {
    $resource = (new UrlMatcher($routes, $context))->matchRequest($request)['_route'];
} catch (ExceptionInterface $e) {
    (new JsonResponse(['resource' => null], 404))->send();
    return true;
}
$identity = [];
foreach ($request->headers->all() as $name => $values) {
    if (str_starts_with($name, 'x-auth-')) {
        $identity[$name] = implode(',', $values);
    }
}
$record = [
    'test_id' => $request->headers->get('x-test-id', ''),
    'resource' => $resource,
    'method' => $request->getMethod(),
    'host' => $request->getHost(),
    'identity' => (object) $identity,
    'authorization' => $request->headers->get('authorization'),
];
file_put_contents(getenv('PORTCULLIS_TEST_LOG') ?: '/dev/null', json_encode($record) . "\n", FILE_APPEND | LOCK_EX);
(new JsonResponse($record))->send();
return true;
